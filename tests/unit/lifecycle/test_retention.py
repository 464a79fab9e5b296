"""retention: which runs a policy expires, which of their objects go (only those nothing
else live names), the dry run equals the apply, remotes, resuming, and the policy's errors."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import cairn
from cairn.config import Config
from cairn.errors import ConfigError
from cairn.lifecycle import retention
from cairn.lifecycle.retention import Policy, RetentionResult, parse_duration, policy_from_config
from cairn.objects.hashing import hash_bytes
from cairn.objects.odb import ObjectDB
from cairn.objects.transfer import transfer
from cairn.project.context import ProjectContext, open_project
from cairn.registry.client import Client
from cairn.remotes.connect import open_remote
from cairn.remotes.settings import remote_add
from cairn.tracking import fluent
from cairn.workspace.add import add
from cairn.workspace.init import init

DAY = 86400
POLICY = Policy(max_age=DAY, keep_if_tagged=("keep",))


def run_git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProjectContext]:
    root = tmp_path / "repo"
    root.mkdir()
    run_git(root, "init", "-q", "-b", "main")
    init(root, hooks=False)
    monkeypatch.chdir(root)
    fluent._reset_for_tests()
    with open_project(root) as p:
        yield p
    fluent._reset_for_tests()


def logged_run(project: ProjectContext, *contents: str, tags: dict[str, str] | None = None,
               model: str | None = None) -> str:
    """A finished run with one artifact per content (and a `model/` directory)."""
    scratch = project.root.parent / "scratch"
    scratch.mkdir(exist_ok=True)
    with cairn.start_run() as run:
        for i, text in enumerate(contents):
            path = scratch / f"artifact-{i}.txt"
            path.write_text(text)
            cairn.log_artifact(str(path))
        if model is not None:
            (scratch / "model").mkdir(exist_ok=True)
            (scratch / "model" / "weights.bin").write_text(model)
            cairn.log_artifacts(str(scratch / "model"), "model")
        cairn.set_tags(tags or {})
    return run.info.run_id


def digest(text: str) -> str:
    return hash_bytes(text.encode())


def cached(project: ProjectContext) -> set[str]:
    return set(project.odb.list_oids())


def deleted(project: ProjectContext, run_id: str) -> bool:
    return project.store.get_run(run_id).info.lifecycle_stage == "deleted"


def old_then_new(project: ProjectContext) -> float:
    """The moment between the runs made so far and the next ones, as a `now` that makes
    the earlier runs older than POLICY's day and the later ones younger."""
    time.sleep(0.01)
    between = time.time()
    time.sleep(0.01)
    return between + POLICY.max_age


def test_old_runs_go_with_the_objects_only_they_named(project: ProjectContext) -> None:
    (project.root / "data.csv").write_text("tracked data")
    add(project, ["data.csv"])
    old = logged_run(project, "only old", "shared with a new run", "tracked data")
    now = old_then_new(project)
    new = logged_run(project, "shared with a new run", "only new")

    result = retention.apply(project, POLICY, now=now)

    assert [r.run_id for r in result.runs] == [old]
    assert deleted(project, old) and not deleted(project, new)
    assert set(result.objects["cache"]) == {digest("only old")}
    assert digest("only old") not in cached(project)
    assert {digest("shared with a new run"), digest("only new"),
            digest("tracked data")} <= cached(project)


def test_what_a_version_or_a_tag_keeps(project: ProjectContext) -> None:
    client = Client()
    source = logged_run(project, "source's log", model="registered weights")
    client.create_registered_model("fraud")
    client.create_model_version("fraud", f"runs:/{source}/model", source)
    staged = logged_run(project, "staged's log", model="staged weights")
    version = client.create_model_version("fraud", f"runs:/{staged}/model", staged)
    client.transition_model_version_stage("fraud", version.version, "Staging")
    client.transition_model_version_stage("fraud", version.version, "None")
    client.delete_model_version("fraud", version.version)  # gone, but it reached Staging
    tagged = logged_run(project, "tagged's log", tags={"keep": "yes"})
    plain = logged_run(project, "plain's log", tags={"other": "x"})

    result = retention.apply(project, POLICY, now=time.time() + 2 * DAY)

    assert [r.run_id for r in result.runs] == [plain]
    assert result.kept == {source: "source of fraud v1", staged: "fraud v2 reached Staging",
                           tagged: "tagged keep"}
    assert set(result.objects["cache"]) == {digest("plain's log")}
    assert {digest("registered weights"), digest("staged weights"),
            digest("tagged's log")} <= cached(project)


def test_a_stage_left_out_of_keep_if_stage_keeps_nothing(project: ProjectContext) -> None:
    client = Client()
    staged = logged_run(project, "staged's log", model="staged weights")
    client.create_registered_model("fraud")
    version = client.create_model_version("fraud", f"runs:/{staged}/model", staged)
    client.transition_model_version_stage("fraud", version.version, "Staging")
    client.delete_model_version("fraud", version.version)
    only_production = Policy(max_age=DAY, keep_if_stage=("Production",))

    result = retention.apply(project, only_production, now=time.time() + 2 * DAY)

    assert [r.run_id for r in result.runs] == [staged]


def test_the_dry_run_lists_exactly_what_the_apply_deletes(project: ProjectContext) -> None:
    runs = [logged_run(project, f"log {i}", "common", model=f"weights {i % 2}")
            for i in range(4)]
    now = time.time() + 2 * DAY
    before = cached(project)

    planned = retention.apply(project, POLICY, dry_run=True, now=now)
    assert cached(project) == before and not any(deleted(project, r) for r in runs)
    done = retention.apply(project, POLICY, now=now)

    assert planned.to_dict() | {"dry_run": False} == done.to_dict()
    assert before - cached(project) == set(planned.objects["cache"])
    assert all(deleted(project, r) for r in runs)
    # the model directories' manifests and files, followed down, went too
    assert {digest("weights 0"), digest("weights 1"), digest("common")} <= set(
        planned.objects["cache"])


def test_git_history_in_scope_keeps_what_it_tracks(project: ProjectContext) -> None:
    (project.root / "data.csv").write_text("tagged data")
    add(project, ["data.csv"])
    run_git(project.root, "add", "-A")
    run_git(project.root, "commit", "-qm", "data")
    run_git(project.root, "tag", "v1")
    (project.root / "data.csv.cairn").unlink()  # the workspace no longer tracks it
    logged_run(project, "tagged data", "run's own")

    result = retention.apply(project, POLICY, now=time.time() + 2 * DAY)

    assert set(result.objects["cache"]) == {digest("run's own")}
    assert digest("tagged data") in cached(project)


def test_the_run_cache_keeps_what_it_would_restore(project: ProjectContext) -> None:
    (project.root / "in.txt").write_text("input")
    (project.root / "cairn.yaml").write_text(
        "stages:\n  make:\n    cmd: echo built > out.txt\n    deps:\n    - in.txt\n"
        "    outs:\n    - out.txt\n")
    subprocess.run([sys.executable, "-m", "cairn", "repro"], cwd=project.root, check=True,
                   capture_output=True)
    (project.root / "cairn.lock").unlink()  # only the run cache remembers the out now
    (project.root / "out.txt").unlink()
    logged_run(project, "built\n", "run's own")

    result = retention.apply(project, POLICY, now=time.time() + 2 * DAY)

    assert set(result.objects["cache"]) == {digest("run's own")}
    assert digest("built\n") in cached(project)


@pytest.fixture
def two_remotes(project: ProjectContext, tmp_path: Path) -> dict[str, ObjectDB]:
    remote_add(project.config, "origin", str(tmp_path / "origin"), default=True)
    remote_add(project.config, "backup", str(tmp_path / "backup"))
    return {name: open_remote(project.config, name) for name in ("origin", "backup")}


def push_all(project: ProjectContext, remotes: dict[str, ObjectDB]) -> None:
    for remote in remotes.values():
        transfer(project.odb, remote, list(project.odb.list_oids())).raise_for_failures("push")


def test_cloud_cleans_every_remote_or_those_named(project: ProjectContext,
                                                  two_remotes: dict[str, ObjectDB]) -> None:
    first = logged_run(project, "first run's")
    push_all(project, two_remotes)
    now = time.time() + 2 * DAY

    named = retention.apply(project, POLICY, cloud=True, remotes=["backup"], now=now)
    assert set(named.objects) == {"cache", "backup"}
    assert digest("first run's") in set(two_remotes["origin"].list_oids())
    assert digest("first run's") not in set(two_remotes["backup"].list_oids())

    everywhere = retention.apply(project, POLICY, cloud=True, now=now)  # resumes the rest
    assert [r.run_id for r in everywhere.runs] == [first] and everywhere.runs[0].already_deleted
    assert everywhere.objects == {"cache": {}, "backup": {},
                                  "origin": {digest("first run's"): len("first run's")}}
    assert digest("first run's") not in set(two_remotes["origin"].list_oids())


def test_an_interrupted_apply_resumes(project: ProjectContext,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    logged_run(project, "doomed")
    keeper = logged_run(project, "kept", tags={"keep": "1"})
    now = time.time() + 2 * DAY

    def killed(self: ObjectDB, oids: object) -> None:
        raise KeyboardInterrupt  # after the runs were deleted, before any object went

    with monkeypatch.context() as m:
        m.setattr(ObjectDB, "remove", killed)
        with pytest.raises(KeyboardInterrupt):
            retention.apply(project, POLICY, now=now)
    assert digest("doomed") in cached(project)

    again = retention.apply(project, POLICY, now=now)
    assert set(again.objects["cache"]) == {digest("doomed")}
    assert digest("doomed") not in cached(project) and digest("kept") in cached(project)
    assert not deleted(project, keeper)


def test_a_run_registered_while_retention_ran_is_kept(project: ProjectContext,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    late = logged_run(project, "registered late", model="late weights")
    planned = retention._select_runs

    def select_then_register(*args: object) -> None:
        planned(*args)  # type: ignore[arg-type]
        Client().create_model_version("fraud", f"runs:/{late}/model", late)

    Client().create_registered_model("fraud")
    monkeypatch.setattr(retention, "_select_runs", select_then_register)
    result: RetentionResult = retention.apply(project, POLICY, now=time.time() + 2 * DAY)

    assert result.skipped_runs == [late] and not deleted(project, late)
    assert result.objects["cache"] == {}
    assert {digest("registered late"), digest("late weights")} <= cached(project)


# -- the policy -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds"), [("90d", 90 * DAY), ("12h", 43200),
                                               ("4w", 28 * DAY), ("30m", 1800), (" 5 s ", 5)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text, "retention.runs.max_age") == seconds


@pytest.mark.parametrize("text", ["90", "90 days", "d", "-1d", "1.5d", "", 90])
def test_a_malformed_duration_says_how_to_write_one(text: object) -> None:
    with pytest.raises(ConfigError, match=r"retention.runs.max_age takes a duration such as "
                                          r"\"90d\""):
        parse_duration(text, "retention.runs.max_age")  # type: ignore[arg-type]


def test_the_policy_from_config(project: ProjectContext) -> None:
    config: Config = project.config
    with pytest.raises(ConfigError, match="no retention policy.*retention.runs.max_age 90d"):
        policy_from_config(config)
    config.set("retention.runs.max_age", "90d")
    config.set("retention.runs.keep_if_tagged", "keep, pinned")  # as the CLI passes it
    policy = policy_from_config(config)
    assert policy == Policy(90 * DAY, ("Staging", "Production", "Archived"), ("keep", "pinned"),
                            "90d")
    (project.root / ".cairn" / "config.toml").write_text(
        '[retention.runs]\nmax_age = "1d"\nkeep_if_stage = "Production"\n')
    with pytest.raises(ConfigError, match=r"keep_if_stage takes a list of names"):
        policy_from_config(Config(project.root / ".cairn"))
