"""`repro`: which stages run, what a failed stage leaves, parallel stages, dry runs."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cairn.errors import LockError, UserError
from cairn.pipeline.repro import StageFailedError, StageResult, repro
from cairn.project.context import open_project
from tests.conftest import CliRepo

# The seed's two-stage pipeline, with shell commands standing in for the scripts.
SEED = """\
stages:
  preprocess:
    cmd: mkdir -p data/processed && cp data/raw/* data/processed/
    deps: [data/raw/]
    outs: [data/processed/]
  train:
    cmd: cat data/processed/* > models/classifier.pkl && echo '{"acc":0.9}' > metrics.json
    deps: [data/processed/]
    params: [train.learning_rate, train.epochs]
    outs: [models/classifier.pkl]
    metrics:
    - metrics.json: {cache: false}
"""
PARAMS = "train:\n  learning_rate: 0.01\n  epochs: 50\nevaluate:\n  threshold: 0.5\n"


def run(repo: CliRepo, *targets: str, **options: object) -> dict[str, StageResult]:
    with open_project(repo.root) as project:
        return {r.stage: r for r in repro(project, targets, **options)}  # type: ignore[arg-type]


def actions(results: dict[str, StageResult]) -> dict[str, str]:
    return {name: r.action for name, r in results.items()}


def ran(results: dict[str, StageResult]) -> set[str]:
    return {name for name, r in results.items() if r.action == "ran"}


@pytest.fixture
def seed(repo: CliRepo) -> CliRepo:
    repo.write("dvc.yaml", SEED)
    repo.write("params.yaml", PARAMS)
    repo.write("data/raw/a.csv", "1,2\n")
    repo.write("data/raw/b.csv", "3,4\n")
    assert ran(run(repo)) == {"preprocess", "train"}
    return repo


def edit(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        text = (root / rel).read_text()
        assert old in text
        (root / rel).write_text(text.replace(old, new))
    return apply


def touch(rel: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        st = os.stat(root / rel)
        os.utime(root / rel, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    return apply


def delete(rel: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).unlink()


@pytest.mark.parametrize(("edit_", "expected_ran", "expected_restored", "reason"), [
    (edit("data/raw/a.csv", "1,2", "1,9"), {"preprocess", "train"}, set(),
     "dep data/raw changed"),
    (edit("params.yaml", "learning_rate: 0.01", "learning_rate: 0.02"), {"train"}, set(),
     "param train.learning_rate 0.01 → 0.02"),
    (edit("params.yaml", "threshold: 0.5", "threshold: 0.7"), set(), set(), None),
    (edit("dvc.yaml", "> models/classifier.pkl", ">models/classifier.pkl"), {"train"}, set(),
     "cmd changed"),
    (delete("models/classifier.pkl"), set(), {"train"}, None),
    (touch("data/raw/a.csv"), set(), set(), None),
    (touch("params.yaml"), set(), set(), None),
], ids=["dep edited", "used param edited", "unused param edited", "cmd edited",
        "out deleted", "dep touched", "params touched"])
def test_change_detection_table(seed: CliRepo, edit_: Callable[[Path], None],
                                expected_ran: set[str], expected_restored: set[str],
                                reason: str | None) -> None:
    edit_(seed.root)
    results = run(seed)
    assert ran(results) == expected_ran
    assert {n for n, r in results.items() if r.action == "restored"} == expected_restored
    if reason is not None:
        assert any(reason in results[name].reasons for name in expected_ran)
    assert ran(run(seed)) == set()  # and then it is up to date


def test_out_reasons_name_the_out(seed: CliRepo) -> None:
    (seed.root / "metrics.json").write_text("{}")
    with open_project(seed.root) as project:
        results = repro(project, dry=True)
    assert [r.reasons for r in results if r.stage == "train"] == [["out metrics.json changed"]]


def test_lock_records_digests_params_and_outs(seed: CliRepo) -> None:
    text = (seed.root / "cairn.lock").read_text()
    assert text.startswith("schema: cairn-lock/1\nstages:\n  preprocess:\n")
    assert "        train.learning_rate: 0.01\n        train.epochs: 50\n" in text
    assert "threshold" not in text
    assert not (seed.root / "dvc.lock").exists()
    assert (seed.root / "models" / ".gitignore").read_text() == "/classifier.pkl\n"
    assert (seed.root / "data" / ".gitignore").read_text() == "/processed\n"
    assert not (seed.root / ".gitignore").exists()  # metrics.json (cache: false) stays in git


def test_cached_outs_are_in_the_cache_and_metrics_are_kept_in_git(seed: CliRepo) -> None:
    from cairn.objects.hashing import hash_bytes
    from cairn.objects.odb import ObjectDB

    odb = ObjectDB.local(seed.root / ".cairn" / "cache")
    assert odb.exists(hash_bytes(b"1,2\n3,4\n"))  # models/classifier.pkl
    untracked = seed.git("status", "--porcelain", "--untracked-files=all").splitlines()
    assert "?? metrics.json" in untracked
    assert "?? models/classifier.pkl" not in untracked
    assert not any(line.startswith("?? data/processed") for line in untracked)


def test_failed_stage_leaves_outputs_and_lock_as_they_were(seed: CliRepo) -> None:
    lock_before = (seed.root / "cairn.lock").read_bytes()
    model_before = (seed.root / "models" / "classifier.pkl").read_bytes()
    metrics_before = (seed.root / "metrics.json").read_bytes()
    edit("dvc.yaml", "cat data/processed/* > models/classifier.pkl",
         "echo half > models/classifier.pkl && echo bad > metrics.json && exit 3")(seed.root)
    with pytest.raises(StageFailedError) as failed:
        run(seed)
    assert "stage 'train' failed" in str(failed.value) and "code 3" in str(failed.value)
    assert (seed.root / "cairn.lock").read_bytes() == lock_before
    assert (seed.root / "models" / "classifier.pkl").read_bytes() == model_before
    assert (seed.root / "metrics.json").read_bytes() == metrics_before
    assert not list((seed.root / ".cairn" / "tmp" / "repro").glob("*"))
    assert [r.action for r in failed.value.results] == ["skipped", "failed"]


def test_stage_that_does_not_create_its_out_fails(seed: CliRepo) -> None:
    edit("dvc.yaml", "cat data/processed/* > models/classifier.pkl && ", "")(seed.root)
    model_before = (seed.root / "models" / "classifier.pkl").read_bytes()
    with pytest.raises(StageFailedError, match="did not create out models/classifier.pkl"):
        run(seed)
    assert (seed.root / "models" / "classifier.pkl").read_bytes() == model_before


def test_failure_stops_the_stages_after_it(repo: CliRepo) -> None:
    repo.write("in.txt", "x")
    repo.write("dvc.yaml", "stages:\n"
               "  a:\n    cmd: exit 1\n    deps: [in.txt]\n    outs: [a.txt]\n"
               "  b:\n    cmd: cp a.txt b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n")
    with pytest.raises(StageFailedError):
        run(repo)
    assert not (repo.root / "cairn.lock").exists()
    assert not (repo.root / "b.txt").exists()


RENDEZVOUS = ("touch {me}.flag; i=0; while [ ! -e {other}.flag ] && [ $i -lt 100 ]; "
              "do sleep 0.1; i=$((i+1)); done; test -e {other}.flag && echo {me} > {me}.txt")


def two_independent_stages(repo: CliRepo) -> None:
    """Each stage waits for the other to have started: only parallel runs succeed."""
    repo.write("in.txt", "x")
    stages = "".join(
        f"  {me}:\n    cmd: {RENDEZVOUS.format(me=me, other=other)}\n"
        f"    deps: [in.txt]\n    outs: [{me}.txt]\n"
        for me, other in (("left", "right"), ("right", "left")))
    repo.write("dvc.yaml", "stages:\n" + stages)


def test_independent_stages_run_in_parallel_with_jobs(repo: CliRepo) -> None:
    two_independent_stages(repo)
    started = time.monotonic()
    assert ran(run(repo, jobs=2)) == {"left", "right"}
    assert time.monotonic() - started < 9
    assert (repo.root / "left.txt").read_text() == "left\n"
    assert ran(run(repo, jobs=2)) == set()


def test_dry_run_changes_nothing(seed: CliRepo) -> None:
    edit("data/raw/a.csv", "1,2", "5,6")(seed.root)
    lock = (seed.root / "cairn.lock").read_bytes()
    objects = sorted((seed.root / ".cairn" / "cache").rglob("*"))
    processed = (seed.root / "data" / "processed" / "a.csv").read_bytes()
    results = run(seed, dry=True)
    assert actions(results) == {"preprocess": "would-run", "train": "would-run"}
    assert results["preprocess"].reasons == ["dep data/raw changed"]
    assert results["train"].reasons == ["upstream stage 'preprocess' would run"]
    assert (seed.root / "cairn.lock").read_bytes() == lock
    assert sorted((seed.root / ".cairn" / "cache").rglob("*")) == objects
    assert (seed.root / "data" / "processed" / "a.csv").read_bytes() == processed


def test_force_runs_everything_in_the_plan(seed: CliRepo) -> None:
    results = run(seed, force=True)
    assert ran(results) == {"preprocess", "train"}
    assert results["train"].reasons == ["forced"]
    assert ran(run(seed, "train", force=True)) == {"preprocess", "train"}  # upstream too


def test_targets_and_downstream(seed: CliRepo) -> None:
    edit("data/raw/a.csv", "1,2", "7,8")(seed.root)
    assert actions(run(seed, "preprocess")) == {"preprocess": "ran"}
    assert actions(run(seed, "preprocess", downstream=True)) == {
        "preprocess": "skipped", "train": "ran"}
    assert ran(run(seed, "train", downstream=True, force=True)) == {"train"}


def test_frozen_and_always_changed(repo: CliRepo) -> None:
    repo.write("in.txt", "x")
    repo.write("dvc.yaml", "stages:\n"
               "  ice:\n    cmd: cp in.txt ice.txt\n    deps: [in.txt]\n    outs: [ice.txt]\n"
               "    frozen: true\n"
               "  clock:\n    cmd: date +%N > clock.txt\n    outs: [clock.txt]\n"
               "    always_changed: true\n")
    assert actions(run(repo)) == {"ice": "frozen", "clock": "ran"}
    assert run(repo)["clock"].reasons == ["always_changed"]


def test_missing_dep_is_an_error_before_anything_runs(repo: CliRepo) -> None:
    repo.write("dvc.yaml", "stages:\n  a:\n    cmd: touch a\n    deps: [nope.txt]\n"
               "    outs: [a]\n")
    with pytest.raises(UserError, match="nope.txt"):
        run(repo)
    assert not (repo.root / "a").exists()


def test_unknown_param_is_an_error(seed: CliRepo) -> None:
    edit("dvc.yaml", "train.epochs", "train.epochz")(seed.root)
    with pytest.raises(UserError, match="unknown param 'train.epochz' in params.yaml"):
        run(seed)


def test_a_held_repository_lock_is_reported(seed: CliRepo) -> None:
    from cairn.project.mutex import repo_lock

    seed.cairn("config", "core.lock_timeout", "0.2")
    with repo_lock(seed.root / ".cairn" / "tmp" / "lock"), pytest.raises(LockError):
        run(seed, force=True)


def test_persist_outs_are_kept_for_the_command(repo: CliRepo) -> None:
    repo.write("in.txt", "x")
    repo.write("dvc.yaml", "stages:\n  log:\n    cmd: cat in.txt >> log.txt\n"
               "    deps: [in.txt]\n    outs:\n    - log.txt: {persist: true}\n")
    run(repo)
    repo.write("in.txt", "y")
    run(repo)
    assert (repo.root / "log.txt").read_text() == "xy"


def test_stages_in_a_subdirectory_get_their_own_lock(repo: CliRepo) -> None:
    repo.write("sub/in.txt", "x")
    repo.write("sub/dvc.yaml", "stages:\n  copy:\n    cmd: cp in.txt out.txt\n"
               "    deps: [in.txt]\n    outs: [out.txt]\n")
    assert actions(run(repo)) == {"sub/dvc.yaml:copy": "ran"}
    text = (repo.root / "sub" / "cairn.lock").read_text()
    assert "  copy:\n" in text and "- path: in.txt\n" in text
    assert actions(run(repo)) == {"sub/dvc.yaml:copy": "skipped"}


def test_json_shape(seed: CliRepo) -> None:
    results = run(seed)
    assert json.loads(json.dumps([r.to_dict() for r in results.values()])) == [
        {"stage": "preprocess", "action": "skipped", "reasons": []},
        {"stage": "train", "action": "skipped", "reasons": []}]


@pytest.mark.parametrize(("cmd", "code", "written"), [
    ("cp in.txt out.txt", 0, "x"),  # plain words: no shell needed
    ("cp 'in.txt' out.txt", 0, "x"),  # quotes: the shell
    ("echo $HOME_IS_NOT_SET-y > out.txt", 0, "-y\n"),
    ("exit 3", 3, None),  # a builtin
    ("no-such-program-here", 127, None),  # as sh reports it
    ("true", 0, None),
])
def test_commands_behave_as_under_sh(tmp_path: Path, cmd: str, code: int,
                                     written: str | None) -> None:
    from cairn.pipeline.repro import run_command

    (tmp_path / "in.txt").write_text("x")
    assert run_command(cmd, tmp_path, None) == code
    if written is not None:
        assert (tmp_path / "out.txt").read_text() == written


def test_unknown_param_of_a_later_stage_stops_before_the_first_runs(seed: CliRepo) -> None:
    edit("data/raw/a.csv", "1,2", "0,0")(seed.root)
    edit("dvc.yaml", "train.epochs", "train.epochz")(seed.root)
    processed = (seed.root / "data" / "processed" / "a.csv").read_bytes()
    with pytest.raises(UserError, match="unknown param 'train.epochz'"):
        run(seed)
    assert (seed.root / "data" / "processed" / "a.csv").read_bytes() == processed


def test_parallel_failure_keeps_the_finished_stage_and_starts_nothing_new(repo: CliRepo) -> None:
    repo.write("in.txt", "x")
    repo.write("dvc.yaml", "stages:\n"
               "  bad:\n    cmd: exit 2\n    deps: [in.txt]\n    outs: [bad.txt]\n"
               "  good:\n    cmd: sleep 0.3 && cp in.txt good.txt\n    deps: [in.txt]\n"
               "    outs: [good.txt]\n"
               "  after:\n    cmd: cp good.txt after.txt\n    deps: [good.txt]\n"
               "    outs: [after.txt]\n")
    with pytest.raises(StageFailedError, match="stage 'bad' failed") as failed:
        run(repo, jobs=2)
    assert {r.stage: r.action for r in failed.value.results} == {"bad": "failed", "good": "ran"}
    assert "  good:\n" in (repo.root / "cairn.lock").read_text()
    assert not (repo.root / "after.txt").exists()


@pytest.mark.parametrize("link_type", ["hardlink", "symlink"])
def test_outs_linked_into_the_cache(repo: CliRepo, link_type: str) -> None:
    repo.cairn("config", "cache.type", link_type)
    repo.write("in.txt", "x")
    repo.write("dvc.yaml", "stages:\n  copy:\n    cmd: cp in.txt out.txt && mkdir -p d && "
               "cp in.txt d/f.txt && echo more >> d/f.txt\n    deps: [in.txt]\n"
               "    outs: [out.txt, d]\n")
    assert ran(run(repo)) == {"copy"}
    out = repo.root / "out.txt"
    assert out.is_symlink() if link_type == "symlink" else out.stat().st_nlink == 2
    assert out.read_text() == "x"
    assert ran(run(repo)) == set()
    (repo.root / "in.txt").write_text("y")  # the old outs are links: they must not change
    assert ran(run(repo)) == {"copy"}
    assert out.read_text() == "y" and (repo.root / "d" / "f.txt").read_text() == "ymore\n"


def test_persist_out_linked_into_the_cache_is_made_writable(repo: CliRepo) -> None:
    repo.cairn("config", "cache.type", "hardlink")
    repo.write("in.txt", "x")
    repo.write("dvc.yaml", "stages:\n  log:\n    cmd: cat in.txt >> log.txt\n"
               "    deps: [in.txt]\n    outs:\n    - log.txt: {persist: true}\n")
    run(repo)
    repo.write("in.txt", "y")
    run(repo)
    assert (repo.root / "log.txt").read_text() == "xy"
    from cairn.objects.hashing import hash_bytes
    from cairn.objects.odb import ObjectDB

    odb = ObjectDB.local(repo.root / ".cairn" / "cache")
    assert Path(odb.oid_to_path(hash_bytes(b"x"))).read_bytes() == b"x"  # the object is intact


def test_a_clean_repro_reads_no_file(seed: CliRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    import cairn.objects.hashing
    import cairn.objects.tree

    time.sleep(0.06)  # past the racy window (the stat cache's git rule) of the files
    run(seed)  # written just before the first run: they are re-hashed once
    hashed: list[str] = []

    def counting(path: object, size: int | None = None) -> str:
        hashed.append(str(path))
        raise AssertionError(f"{path} was hashed")

    monkeypatch.setattr(cairn.objects.hashing, "hash_file", counting)
    monkeypatch.setattr(cairn.objects.tree, "hash_file", counting)
    assert ran(run(seed)) == set()
    assert hashed == []


def test_outs_whose_objects_left_the_cache_are_stored_again(seed: CliRepo) -> None:
    import shutil

    from cairn.objects.hashing import hash_bytes
    from cairn.objects.odb import ObjectDB

    shutil.rmtree(seed.root / ".cairn" / "cache" / "objects")  # as after a crash or gc
    assert ran(run(seed)) == set()
    assert ObjectDB.local(seed.root / ".cairn" / "cache").exists(hash_bytes(b"1,2\n3,4\n"))


def test_a_list_of_commands_runs_in_order_and_stops_at_the_first_failure(repo: CliRepo) -> None:
    repo.write("in.txt", "x")
    repo.write("dvc.yaml", "stages:\n  two:\n    cmd:\n    - cp in.txt out.txt\n"
               "    - echo second >> out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n")
    assert ran(run(repo)) == {"two"}
    assert (repo.root / "out.txt").read_text() == "xsecond\n"
    assert ran(run(repo)) == set()  # the lock (cmd as a list) reads back equal
    repo.write("dvc.yaml", "stages:\n  two:\n    cmd:\n    - exit 5\n    - touch never\n"
               "    deps: [in.txt]\n    outs: [out.txt]\n")
    with pytest.raises(StageFailedError, match="`exit 5` exited with code 5"):
        run(repo)
    assert not (repo.root / "never").exists()
