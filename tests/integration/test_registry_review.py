"""Review of `cairn models …` as an MLflow user reads it: defects found, pinned here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import cairn
from cairn.tracking import fluent
from tests.conftest import CliRepo


@pytest.fixture(autouse=True)
def fresh_tracking() -> Iterator[None]:
    fluent._reset_for_tests()
    yield
    fluent._reset_for_tests()


def two_versions(repo: CliRepo) -> None:
    repo.write("model.txt", "weights")
    repo.cairn("models", "register", "model.txt", "--name", "fraud")
    repo.cairn("models", "register", "model.txt", "--name", "fraud")


def test_history_names_the_alias_that_moved(repo: CliRepo) -> None:
    two_versions(repo)
    repo.cairn("models", "alias", "fraud", "champion", "1")
    repo.cairn("models", "alias", "fraud", "champion", "2")
    repo.cairn("models", "alias", "fraud", "champion", "--delete")
    rows = [line for line in repo.cairn("models", "history", "fraud").output.splitlines()
            if "alias" in line]
    assert len(rows) == 3 and all("champion" in row for row in rows)


def test_lineage_table_shows_params_yaml(repo: CliRepo) -> None:
    repo.write("params.yaml", "train:\n  learning_rate: 0.125\n")
    repo.git("add", "params.yaml")
    repo.git("commit", "-qm", "params")
    two_versions(repo)
    out = repo.cairn("models", "lineage", "models:/fraud/1").output
    assert "learning_rate" in out and "0.125" in out


def repro_a_model(repo: CliRepo) -> None:
    """A one-stage pipeline whose cached out `models/` cairn.lock records, committed."""
    repo.write("train.py", "import os\nos.makedirs('models', exist_ok=True)\n"
                           "open('models/clf.bin', 'w').write('weights v1')\n")
    repo.cairn("stage", "add", "-n", "train", "-d", "train.py", "-o", "models",
               "python", "train.py")
    repo.cairn("repro")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "train")


def test_a_pipeline_out_registers_by_the_digest_its_lock_records(repo: CliRepo) -> None:
    """A cairn.lock out is tracked data like a pointer file's: registering it names the
    recorded digest, even when the workspace copy is absent (a clone that has not pulled)
    or was edited since repro."""
    import shutil

    from cairn.project.lockfile import read_lock

    repro_a_model(repo)
    recorded = read_lock(repo.root, "cairn.lock").stages["train"].out("models")
    assert recorded is not None
    shutil.rmtree(repo.root / "models")
    version = cairn.register_model("models", "clf")
    assert version.digest == recorded.digest

    repo.cairn("checkout")
    (repo.root / "models" / "clf.bin").unlink()
    (repo.root / "models" / "clf.bin").write_text("edited by hand")
    assert cairn.register_model("models", "clf").digest == recorded.digest
    chain = out_json(repo, "models", "lineage", "models:/clf/2")
    assert chain["pipeline_stage"] == {"stage": "train", "out": "models"}


def out_json(repo: CliRepo, *args: str) -> Any:
    return json.loads(repo.cairn(*args, "--json").output)


def test_json_output_stays_json_with_a_nan_metric(repo: CliRepo) -> None:
    """MLflow lets a run log NaN (a diverged loss); `--json` must still parse (jq, CI)."""
    with cairn.start_run() as run:
        cairn.log_metrics({"loss": float("nan"), "gain": float("inf"), "f1": 0.5})

    def strict(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    for args in (("runs", "list"), ("runs", "show", run.info.run_id)):
        data = json.loads(repo.cairn(*args, "--json").output, parse_constant=strict)
        assert "f1" in json.dumps(data)
