# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint unit bench bench-pipeline bench-tracking bench-gates bench-reproduce bench-server clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# an editable install leaves no bytecode, and PYTHONDONTWRITEBYTECODE may be set
	$(BIN)/python -m compileall -q src
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

# Two workers, each test file on one (its module-scoped servers start once): most tests
# wait on servers and subprocesses, so two halve the wall time even on 2 cores.
TEST_JOBS ?= 2

test: lint
	$(BIN)/pytest -q -n $(TEST_JOBS) --dist loadfile

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_store.py

bench-pipeline: $(STAMP)
	$(BIN)/python benchmarks/bench_pipeline.py

bench-tracking: $(STAMP)
	$(BIN)/python benchmarks/bench_tracking.py

bench-gates: $(STAMP)
	$(BIN)/python benchmarks/bench_gates.py

bench-reproduce: $(STAMP)
	$(BIN)/python benchmarks/bench_reproduce.py

bench-server: $(STAMP)
	$(BIN)/python benchmarks/bench_server.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
