"""cairn.lifecycle.reproduce: what cannot be reproduced is said in one line and recorded
as "failed"; metric deltas and the stage a script ran in."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import cairn
from cairn.errors import UserError
from cairn.lifecycle.reproduce import CannotReproduce, MetricDelta, _stage_running, reproduce
from cairn.pipeline.schema import load_pipeline
from cairn.project.context import ProjectContext
from cairn.registry.reproduction import last_reproduction
from cairn.tracking.backend import backend
from tests.conftest import CliRepo, commit

pytestmark = pytest.mark.usefixtures("fresh_tracking")




def register(repo: CliRepo, name: str, tags: dict[str, str] | None = None) -> None:
    """A version trained here, in this process (its entry point: pytest's script)."""
    repo.write("weights.bin", b"w" * 64)
    with cairn.start_run() as run:
        cairn.set_tags(tags or {})
        cairn.log_artifact("weights.bin")
    cairn.register_model(f"runs:/{run.info.run_id}/weights.bin", name)


def attempt(repo: CliRepo, uri: str) -> str:
    b = backend()
    with pytest.raises(CannotReproduce) as caught:
        reproduce(ProjectContext.find(repo.root), b.store, b.odb, uri)
    return str(caught.value)


def failed_reason(name: str) -> str:
    entry = last_reproduction(backend().store, name, 1)
    assert entry is not None and entry.to_value == "failed"
    return entry.reason


def test_a_version_without_a_commit_cannot_be_reproduced(repo: CliRepo,
                                                         scratch_dir: Path) -> None:
    register(repo, "m")  # the repository has no commit yet
    error = attempt(repo, "models:/m/1")
    assert "m v1 records no git commit" in error and "\n" not in error
    assert failed_reason("m") == error and list(scratch_dir.iterdir()) == []


def test_a_commit_the_repository_lacks_is_named(repo: CliRepo, scratch_dir: Path) -> None:
    commit(repo, "first")
    register(repo, "m", {"cairn.git.commit": "ab" * 20})
    error = attempt(repo, "models:/m/latest")
    assert f"commit {'ab' * 20} of m v1 is not in the repository" in error
    assert "git fetch" in error and failed_reason("m") == error


def test_a_malformed_commit_is_never_passed_to_git(repo: CliRepo, scratch_dir: Path) -> None:
    commit(repo, "first")
    register(repo, "m", {"cairn.git.commit": "--output=/tmp/x"})
    assert "malformed git commit '--output=/tmp/x'" in attempt(repo, "models:/m/1")


def test_no_stage_and_no_entry_point_in_the_project_is_refused(
        repo: CliRepo, scratch_dir: Path) -> None:
    commit(repo, "first")
    register(repo, "m")  # run from pytest: an entry point outside the project
    error = attempt(repo, "models:/m/1")
    assert "records no pipeline stage that made it" in error and "nothing to rerun" in error
    assert failed_reason("m") == error
    assert len(repo.git("worktree", "list").splitlines()) == 1
    assert list(scratch_dir.iterdir()) == []


def test_uncommitted_changes_stored_nowhere_are_refused(repo: CliRepo,
                                                        scratch_dir: Path) -> None:
    repo.write("train.py", "print('hi')\n")
    commit(repo, "first")
    repo.write("train.py", "print('changed')\n")
    register(repo, "m", {"cairn.source.entry_point": "train.py"})
    error = attempt(repo, "models:/m/1")
    assert "m v1 was trained with uncommitted changes" in error
    assert "stored in neither the cache nor a remote" in error
    assert (repo.root / "train.py").read_text() == "print('changed')\n"


def test_a_run_uri_is_not_a_version(repo: CliRepo) -> None:
    commit(repo, "first")
    with cairn.start_run() as run:
        repo.write("w.bin", b"w")
        cairn.log_artifact("w.bin")
    b = backend()
    with pytest.raises(UserError, match="is not a registered model version"):
        reproduce(ProjectContext.find(repo.root), b.store, b.odb,
                  f"runs:/{run.info.run_id}/w.bin")


def test_metric_deltas_and_tolerance() -> None:
    assert MetricDelta("f1", 0.9, 0.95).within(0.05 + 1e-12)
    assert not MetricDelta("f1", 0.9, 0.95).within(0.01)
    assert MetricDelta("f1", 0.9, None).delta is None
    assert not MetricDelta("f1", None, 0.9).within(100)  # missing on one side never passes
    assert not MetricDelta("loss", math.nan, 1.0).within(100)
    assert MetricDelta("loss", math.inf, math.inf).within(0)


def test_the_stage_running_a_script_is_the_one_with_its_arguments(tmp_path: Path) -> None:
    (tmp_path / "cairn.yaml").write_text(
        "stages:\n"
        "  a:\n    cmd: python src/train.py --fast\n    outs: [a]\n"
        "  b:\n    cmd: python src/train.py --slow\n    outs: [b]\n"
        "  c:\n    cmd: python ../src/eval.py\n    wdir: sub\n    outs: [c]\n")
    (tmp_path / "sub").mkdir()
    pipeline = load_pipeline(tmp_path)
    found = _stage_running(pipeline, "src/train.py", ["src/train.py", "--slow"])
    assert found is not None and found.name == "b"
    assert _stage_running(pipeline, "src/train.py", ["src/train.py"]) is None  # ambiguous
    only = _stage_running(pipeline, "src/eval.py", ["eval.py"])
    assert only is not None and only.name == "c"
    assert _stage_running(pipeline, "other.py", None) is None
