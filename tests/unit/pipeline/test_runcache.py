"""The run cache: exact inputs seen before restore their outputs, locally or via a remote."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cairn.objects.hashing import hash_bytes
from cairn.pipeline import runcache, runcache_remote
from cairn.pipeline.repro import StageResult, repro
from cairn.pipeline.schema import Output, ParamRef, Stage
from cairn.project.context import open_project
from cairn.project.tracked import TrackedPath
from tests.conftest import CliRepo

PIPELINE = """\
stages:
  train:
    cmd: cat data.txt params.yaml > model.txt && echo '{"n":1}' > metrics.json
    deps: [data.txt]
    params: [train.lr]
    outs: [model.txt]
    metrics:
    - metrics.json: {cache: false}
"""


def run(repo: CliRepo, **options: object) -> dict[str, StageResult]:
    with open_project(repo.root) as project:
        return {r.stage: r for r in repro(project, **options)}  # type: ignore[arg-type]


def set_lr(repo: CliRepo, lr: str) -> None:
    repo.write("params.yaml", f"train:\n  lr: {lr}\n")


@pytest.fixture
def pipeline(repo: CliRepo) -> CliRepo:
    repo.write("dvc.yaml", PIPELINE)
    repo.write("data.txt", "data\n")
    set_lr(repo, "0.01")
    assert run(repo)["train"].action == "ran"
    return repo


def test_param_back_to_an_earlier_value_restores_instead_of_running(pipeline: CliRepo) -> None:
    model_1 = (pipeline.root / "model.txt").read_bytes()
    lock_1 = (pipeline.root / "cairn.lock").read_bytes()
    set_lr(pipeline, "0.02")
    assert run(pipeline)["train"].action == "ran"
    assert (pipeline.root / "model.txt").read_bytes() != model_1
    set_lr(pipeline, "0.01")
    result = run(pipeline)["train"]
    assert result.action == "restored"
    assert result.line == "Restored stage 'train' from the run cache"
    assert (pipeline.root / "model.txt").read_bytes() == model_1
    assert (pipeline.root / "metrics.json").read_text() == '{"n":1}\n'  # cache: false too
    assert (pipeline.root / "cairn.lock").read_bytes() == lock_1
    assert run(pipeline)["train"].action == "skipped"


def test_force_runs_even_when_the_run_cache_has_it(pipeline: CliRepo) -> None:
    (pipeline.root / "model.txt").unlink()
    assert run(pipeline, force=True)["train"].action == "ran"


def test_an_entry_whose_objects_are_gone_is_not_used(pipeline: CliRepo) -> None:
    set_lr(pipeline, "0.02")
    run(pipeline)
    shutil.rmtree(pipeline.root / ".cairn" / "cache" / "objects")
    set_lr(pipeline, "0.01")
    assert run(pipeline)["train"].action == "ran"


def test_entries_are_checked_against_their_name(tmp_path: Path) -> None:
    entry = runcache.RunEntry({"cmd": ["x"], "deps": [["d", "a" * 64]]},
                              (TrackedPath("o", "b" * 64, 1),))
    runcache.save(tmp_path, entry)
    assert runcache.lookup(tmp_path, entry.key) == entry
    assert list(runcache.keys(tmp_path)) == [entry.key]
    path = runcache.entry_path(tmp_path, entry.key)
    path.write_bytes(path.read_bytes().replace(b'"x"', b'"y"'))  # inputs no longer match
    assert runcache.lookup(tmp_path, entry.key) is None
    path.write_bytes(b"{truncated")
    assert runcache.lookup(tmp_path, entry.key) is None


def test_key_depends_on_every_input(pipeline: CliRepo) -> None:
    with open_project(pipeline.root) as project:
        from cairn.pipeline.schema import load_pipeline

        stage = load_pipeline(project.root).stages["train"]
    dep = (TrackedPath("data.txt", "a" * 64, 1),)
    base = runcache.run_key(runcache.stage_inputs(stage, dep, {"params.yaml": {"train.lr": 1}}))
    other_dep = (TrackedPath("data.txt", "c" * 64, 1),)
    assert base != runcache.run_key(runcache.stage_inputs(stage, other_dep,
                                                          {"params.yaml": {"train.lr": 1}}))
    assert base != runcache.run_key(runcache.stage_inputs(stage, dep,
                                                          {"params.yaml": {"train.lr": 2}}))
    assert base == runcache.run_key(runcache.stage_inputs(stage, dep,
                                                          {"params.yaml": {"train.lr": 1}}))


def test_a_corrupt_entry_on_the_remote_is_ignored(pipeline: CliRepo, tmp_path: Path) -> None:
    pipeline.cairn("remote", "add", "-d", "store", str(tmp_path / "remote"))
    pipeline.cairn("push", "--run-cache")
    [entry] = [p for p in (tmp_path / "remote" / "runs").rglob("*") if p.is_file()]
    entry.write_bytes(b"{}")
    shutil.rmtree(pipeline.root / ".cairn" / "cache")
    with open_project(pipeline.root) as project:
        result = runcache_remote.fetch(project)
    assert result.entries == [] and len(result.invalid) == 1


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside", "a/../../x", ".git/hooks/x",
                                  "sub/.CAIRN/config.local.toml", ""])
def test_an_entry_whose_outs_leave_the_workspace_is_ignored(path: str) -> None:
    """Entries come from remotes too: one naming such a path is not an entry at all."""
    inputs = {"cmd": ["x"], "wdir": "", "deps": [], "params": {}, "outs": [[path, True]]}
    entry = runcache.RunEntry(inputs, (TrackedPath(path, "a" * 64, 1),))
    assert runcache.decode(entry.to_bytes(), entry.key) is None
    good = runcache.RunEntry({**inputs, "outs": [["model.bin", True]]},
                             (TrackedPath("model.bin", "a" * 64, 1),))
    assert runcache.decode(good.to_bytes(), good.key) == good


GOLDEN = Path(__file__).parents[2] / "golden" / "run-v1.json"
# The BLAKE3 of the golden's canonical inputs: its name under runs/. A change here means
# every run-cache entry ever written stops being found.
GOLDEN_KEY = "3d3147fa0d43386276bda693a631262d657186bd786b9336d5019a824c751671"


def digest(label: str) -> str:
    """A stand-in digest, the BLAKE3 of a label, so the golden reads like a real entry."""
    return hash_bytes(label.encode())


def golden_entry() -> runcache.RunEntry:
    """The run tests/golden/run-v1.json records: the train stage of cairn-lock-v1.yaml."""
    params = {"params.yaml": {"train.n_est": 50, "train.min_split": 0.01, "train.tol": 1e-05,
                              "train.criterion": "gini", "train.warm_start": False}}
    stage = Stage("train", ("python src/train.py data/prepared models",), "",
                  ("data/prepared", "src/train.py"),
                  tuple(ParamRef("params.yaml", key) for key in params["params.yaml"]),
                  (Output("models"), Output("train_metrics.json", cache=False, kind="metrics")))
    deps = (TrackedPath("data/prepared", digest("prepared"), 6_291_456, 2),
            TrackedPath("src/train.py", digest("train.py"), 967))
    return runcache.RunEntry(runcache.stage_inputs(stage, deps, params),
                             (TrackedPath("models", digest("models"), 1_048_917, 3),
                              TrackedPath("train_metrics.json", digest("train_metrics"), 73)))


def test_the_golden_run_entry_reads_as_its_run_and_is_written_byte_for_byte(
        tmp_path: Path) -> None:
    data, expected = GOLDEN.read_bytes(), golden_entry()
    assert expected.key == GOLDEN_KEY
    assert runcache.decode(data, GOLDEN_KEY) == expected
    runcache.save(tmp_path, expected)
    assert runcache.entry_path(tmp_path, GOLDEN_KEY).read_bytes() == data
    assert runcache.lookup(tmp_path, GOLDEN_KEY) == expected
