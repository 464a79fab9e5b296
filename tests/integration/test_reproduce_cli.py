"""`cairn reproduce` end to end: a pipeline stage that trains, tracks a run and registers
a model, rebuilt from the version's lineage in a scratch worktree and compared."""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from cairn.objects.hashing import hash_bytes
from cairn.objects.odb import ObjectDB
from cairn.registry.reproduction import last_reproduction
from cairn.store.entities import AuditEntry
from cairn.store.open import open_store
from cairn.tracking import fluent
from tests.conftest import CliRepo, commit

# One script, two stages: `train` is deterministic; `noisy` adds random bytes to its model
# and noise below 1 to its metric.
TRAIN = """\
import os, random, sys
from pathlib import Path
import yaml
import cairn

if os.environ.get("BREAK_TRAINING"):
    sys.exit("training broke")
noisy = sys.argv[1:] == ["noisy"]
name, out = ("noisy", Path("noisy")) if noisy else ("det", Path("model"))
scale = yaml.safe_load(Path("params.yaml").read_text())["scale"]
text = Path("data/input.txt").read_text()
out.mkdir(exist_ok=True)
(out / "weights.txt").write_text(text.upper() * scale + (repr(random.random()) if noisy else ""))
with cairn.start_run() as run:
    cairn.log_param("scale", scale)
    cairn.log_metric("score", len(text) * scale + (random.random() if noisy else 0.0))
    cairn.log_artifacts(str(out), "model")
cairn.register_model(f"runs:/{run.info.run_id}/model", name)
"""
PYTHON = shlex.quote(sys.executable)
PIPELINE = f"""\
stages:
  train:
    cmd: {PYTHON} train.py
    deps: [train.py, data/input.txt]
    params: [scale]
    outs: [model]
  noisy:
    cmd: {PYTHON} train.py noisy
    deps: [train.py, data/input.txt]
    params: [scale]
    outs: [noisy]
"""


pytestmark = pytest.mark.usefixtures("fresh_tracking")




@pytest.fixture
def trained(repo: CliRepo) -> CliRepo:
    """Both stages run once on a clean commit: det v1 and noisy v1 registered."""
    repo.write("train.py", TRAIN)
    repo.write("cairn.yaml", PIPELINE)
    repo.write("params.yaml", "scale: 3\n")
    repo.write("data/input.txt", "some training data\n")
    repo.cairn("add", "data/input.txt")
    commit(repo, "pipeline and data")
    repo.cairn("repro")
    commit(repo, "trained")
    return repo


def workspace(repo: CliRepo) -> tuple[str, dict[str, str]]:
    """`git status --porcelain` and the digest of every file outside .git and .cairn."""
    files = {p.relative_to(repo.root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(repo.root.rglob("*"))
             if p.is_file() and p.relative_to(repo.root).parts[0] not in (".git", ".cairn")}
    return repo.git("status", "--porcelain"), files


def worktrees(repo: CliRepo) -> list[str]:
    return repo.git("worktree", "list").splitlines()


def reproduce(repo: CliRepo, *args: str, code: int = 0) -> Any:
    fluent._reset_for_tests()  # the test's process reads what reproduce recorded afresh
    result = repo.cairn("reproduce", *args, ok=False)
    assert result.exit_code == code, result.output + result.stderr
    return result


def error_line(result: Any) -> str:
    """The error: one line, the last on stderr (after the steps reproduce went through)."""
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and sum(ln.startswith("error") for ln in lines) == 1
    return str(lines[-1])


def last(repo: CliRepo, name: str, version: int = 1) -> AuditEntry:
    store = open_store(f"sqlite:///{repo.root / '.cairn' / 'cairn.db'}")
    try:
        entry = last_reproduction(store, name, version)
    finally:
        store.close()
    assert entry is not None
    return entry


@pytest.mark.slow
def test_a_deterministic_stage_reproduces_with_the_same_digest(
        trained: CliRepo, scratch_dir: Path) -> None:
    trained.cairn("models", "alias", "det", "champion", "1")
    before = workspace(trained)
    out = reproduce(trained, "models:/det@champion").output
    assert "stage 'train'" in out and "Reproduced: same digest." in out
    entry = last(trained, "det")
    assert entry.to_value == "match" and entry.user_id
    assert entry.details["recorded_digest"] == entry.details["rebuilt_digest"]
    assert entry.details["commit"] == trained.git("rev-parse", "HEAD~1").strip()
    assert entry.details["stage"] == "train"
    assert workspace(trained) == before
    assert len(worktrees(trained)) == 1 and list(scratch_dir.iterdir()) == []
    lineage = trained.cairn("models", "lineage", "models:/det/1").output
    assert "reproduced" in lineage and "match on" in lineage
    # the rebuild's run and registration went to a scratch database, not the user's
    store = open_store(f"sqlite:///{trained.root / '.cairn' / 'cairn.db'}")
    try:
        assert [mv.version for mv in store.search_model_versions("name = 'det'")] == [1]
    finally:
        store.close()


@pytest.mark.slow
def test_keep_leaves_the_scratch_worktree_for_inspection(trained: CliRepo,
                                                         scratch_dir: Path) -> None:
    # registered from the stage's out, not by the run: the rebuilt out in cairn.lock counts
    trained.cairn("models", "register", "model", "--name", "det-out")
    done = json.loads(reproduce(trained, "models:/det-out/1", "--keep", "--json").stdout)
    kept = Path(done["kept"])
    assert done["status"] == "match" and done["stage"] == "train"
    assert (kept / "model" / "weights.txt").is_file()
    assert any(line.startswith(str(kept)) for line in worktrees(trained))
    trained.git("worktree", "remove", "--force", str(kept))


@pytest.mark.slow
def test_a_noisy_stage_reports_metric_deltas_and_passes_within_a_tolerance(
        trained: CliRepo, scratch_dir: Path) -> None:
    before = workspace(trained)
    cache = ObjectDB.local(trained.root / ".cairn" / "cache")
    objects = set(cache.list_oids())
    failed = reproduce(trained, "models:/noisy/1", code=1).output
    assert "Not reproduced" in failed and "score" in failed
    entry = last(trained, "noisy")
    assert entry.to_value == "mismatch"
    (delta,) = entry.details["deltas"]  # type: ignore[misc]
    assert delta["metric"] == "score" and 0 < abs(delta["delta"]) < 1
    assert entry.details["recorded_digest"] != entry.details["rebuilt_digest"]
    done = json.loads(reproduce(trained, "models:/noisy/1", "--metric-tolerance", "1",
                                "--json").stdout)
    assert done["status"] == "within_tolerance" and done["passed"] is True
    assert done["deltas"][0]["recorded"] == entry.details["deltas"][0]["recorded"]  # type: ignore[index]
    assert last(trained, "noisy").to_value == "within_tolerance"
    assert workspace(trained) == before and len(worktrees(trained)) == 1
    assert set(cache.list_oids()) == objects  # the rebuilds' bytes went to a scratch cache


@pytest.mark.slow
def test_data_missing_everywhere_fails_naming_it_then_comes_from_the_remote(
        trained: CliRepo, scratch_dir: Path, tmp_path: Path) -> None:
    trained.cairn("remote", "add", "-d", "storage", str(tmp_path / "storage"))
    digest = hash_bytes(b"some training data\n")
    cache = ObjectDB.local(trained.root / ".cairn" / "cache")
    cache.remove([digest])
    error = error_line(reproduce(trained, "models:/det/1", code=1))
    assert f"data data/input.txt (digest {digest})" in error and "(storage)" in error
    assert last(trained, "det").to_value == "failed"
    assert "data/input.txt" in last(trained, "det").reason
    assert len(worktrees(trained)) == 1 and list(scratch_dir.iterdir()) == []

    assert cache.add_bytes(b"some training data\n") == digest  # back, to push it
    trained.cairn("push")
    cache.remove([digest])
    assert "Reproduced: same digest." in reproduce(trained, "models:/det/1").output
    assert cache.exists(digest)  # fetched into the cache, as `cairn pull` would


@pytest.mark.slow
def test_uncommitted_changes_stored_as_an_object_are_applied(repo: CliRepo,
                                                              scratch_dir: Path) -> None:
    repo.write("train.py", TRAIN)
    repo.write("cairn.yaml", PIPELINE)
    repo.write("params.yaml", "scale: 3\n")
    repo.write("data/input.txt", "some training data\n")
    repo.cairn("add", "data/input.txt")
    commit(repo, "pipeline and data")
    repo.write("params.yaml", "scale: 5\n")  # trained before committing this
    repo.cairn("repro", "train")
    dirty = last_run_tags(repo)
    assert dirty["cairn.git.dirty"] == "true"
    before = workspace(repo)
    refused = error_line(reproduce(repo, "models:/det/1", code=1))
    assert "uncommitted changes" in refused and dirty["cairn.git.diff_digest"][:12] in refused
    diff = repo.git("diff", "HEAD", "--binary").encode()
    assert ObjectDB.local(repo.root / ".cairn" / "cache").add_bytes(diff) == \
        dirty["cairn.git.diff_digest"]
    assert "Reproduced: same digest." in reproduce(repo, "models:/det/1").output
    assert workspace(repo) == before and len(worktrees(repo)) == 1


def last_run_tags(repo: CliRepo) -> dict[str, str]:
    store = open_store(f"sqlite:///{repo.root / '.cairn' / 'cairn.db'}")
    try:
        mv = store.get_model_version("det", 1)
        assert mv.run_id is not None
        return dict(store.get_run(mv.run_id).data.tags)
    finally:
        store.close()


def test_a_commit_missing_from_the_repository_is_one_clear_error(
        repo: CliRepo, scratch_dir: Path) -> None:
    import cairn

    repo.write("weights.bin", b"w" * 64)
    commit(repo, "weights")
    with cairn.start_run():
        cairn.set_tag("cairn.git.commit", "0123456789abcdef" * 2 + "01234567")
        cairn.log_artifact("weights.bin")
        run_id = cairn.active_run().info.run_id  # type: ignore[union-attr]
    cairn.register_model(f"runs:/{run_id}/weights.bin", "lost")
    error = error_line(reproduce(repo, "models:/lost/latest", code=1))
    assert "commit 0123456789abcdef" in error and "is not in the repository" in error
    assert last(repo, "lost").to_value == "failed"
    assert len(worktrees(repo)) == 1 and list(scratch_dir.iterdir()) == []


@pytest.mark.slow
def test_a_rebuild_that_fails_is_reported_and_recorded(trained: CliRepo,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    before = workspace(trained)
    monkeypatch.setenv("BREAK_TRAINING", "1")  # what the rebuild's process inherits
    failed = reproduce(trained, "models:/det/1", code=1)
    line = error_line(failed)
    assert "the rebuild of det v1 failed" in line and "exited with code 1" in line
    assert last(trained, "det").to_value == "failed"
    assert workspace(trained) == before and len(worktrees(trained)) == 1
