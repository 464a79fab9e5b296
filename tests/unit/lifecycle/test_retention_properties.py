"""Retention over random histories of tracked files, tags, runs, registrations and stages:
nothing live is ever deleted, and the dry run's list is exactly what the apply deletes."""

from __future__ import annotations

import subprocess
import tempfile
import time
from contextlib import chdir
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cairn
from cairn.lifecycle import liveness, retention
from cairn.lifecycle.gc import gc_scope
from cairn.lifecycle.liveness import manifest_reader
from cairn.lifecycle.retention import Policy
from cairn.project.context import ProjectContext, open_project
from cairn.project.revisions import RevisionScope
from cairn.registry.client import Client
from cairn.tracking import fluent
from cairn.workspace.add import add
from cairn.workspace.init import init

CONTENTS = [f"content {i}" for i in range(8)]
POLICY = Policy(max_age=3600, keep_if_stage=("Production",), keep_if_tagged=("keep",))


@dataclass(frozen=True)
class RunPlan:
    old: bool
    artifacts: tuple[int, ...]  # indexes into CONTENTS
    model: int | None  # a model/ directory holding CONTENTS[model]
    keep_tag: bool
    register: bool  # a version that stays registered
    reached: str | None  # a version that reached this stage, then was deleted


runs = st.builds(RunPlan, st.booleans(), st.tuples(*[st.integers(0, 7)] * 2),
                 st.one_of(st.none(), st.integers(0, 7)), st.booleans(),
                 st.booleans(), st.sampled_from([None, "Staging", "Production"]))
history = st.fixed_dictionaries({
    "tracked_then_tagged": st.lists(st.integers(0, 7), max_size=2),  # tag v1, then untracked
    "tracked": st.lists(st.integers(0, 7), max_size=2),  # still in the workspace
    "runs": st.lists(runs, min_size=1, max_size=6),
})


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def make_run(project: ProjectContext, plan: RunPlan, client: Client, scratch: Path) -> str:
    with cairn.start_run() as run:
        for i in plan.artifacts:
            path = scratch / f"a{i}.txt"
            path.write_text(CONTENTS[i])
            cairn.log_artifact(str(path))
        if plan.model is not None:
            model = scratch / f"model{plan.model}"
            model.mkdir(exist_ok=True)
            (model / "w.bin").write_text(CONTENTS[plan.model])
            cairn.log_artifacts(str(model), "model")
        if plan.keep_tag:
            cairn.set_tag("keep", "1")
    run_id = run.info.run_id
    if plan.model is not None and (plan.register or plan.reached):
        version = client.create_model_version("m", f"runs:/{run_id}/model", run_id)
        if plan.reached:
            client.transition_model_version_stage("m", version.version, plan.reached)
            client.delete_model_version("m", version.version)
    return run_id


def live_objects(project: ProjectContext) -> set[str]:
    """What gc's liveness says is live now (deleted runs excluded), plus the run cache."""
    scope = gc_scope(RevisionScope(all_tags=True, all_branches=True))
    refs = liveness.in_scope(project, scope, (*liveness.PROVIDERS, liveness.run_cache_entries))
    return liveness.expand(refs, manifest_reader(project.odb)).oids


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history)
def test_retention_never_deletes_what_is_live(case: dict[str, object]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        scratch = Path(tmp) / "scratch"
        root.mkdir()
        scratch.mkdir()
        git(root, "init", "-q", "-b", "main")
        git(root, "config", "user.email", "t@example.com")
        git(root, "config", "user.name", "t")
        init(root, hooks=False)
        fluent._reset_for_tests()
        with open_project(root) as project, chdir(root):
            cutoff = _play(project, case, scratch)
            _check(project, cutoff)
        fluent._reset_for_tests()


def _play(project: ProjectContext, case: dict[str, object], scratch: Path) -> float:
    """Make the history; the moment between its old runs and its new ones."""
    root = project.root
    for i in case["tracked_then_tagged"]:  # type: ignore[attr-defined]
        (root / f"t{i}.txt").write_text(CONTENTS[i])
        add(project, [f"t{i}.txt"])
    git(root, "add", "-A")
    git(root, "commit", "-qm", "v1", "--allow-empty")
    git(root, "tag", "v1")
    for pointer in root.glob("t*.txt.cairn"):
        pointer.unlink()
    for i in case["tracked"]:  # type: ignore[attr-defined]
        (root / f"w{i}.txt").write_text(CONTENTS[i])
        add(project, [f"w{i}.txt"])
    client = Client()
    client.create_registered_model("m")
    plans: list[RunPlan] = sorted(case["runs"], key=lambda p: not p.old)  # type: ignore[attr-defined]
    cutoff = None
    for plan in plans:
        if not plan.old and cutoff is None:
            time.sleep(0.01)
            cutoff = time.time()
            time.sleep(0.01)
        make_run(project, plan, client, scratch)
    return time.time() + 1 if cutoff is None else cutoff


def _check(project: ProjectContext, cutoff: float) -> None:
    now = cutoff + POLICY.max_age
    before = set(project.odb.list_oids())

    planned = retention.apply(project, POLICY, dry_run=True, now=now)
    assert set(project.odb.list_oids()) == before
    done = retention.apply(project, POLICY, now=now)

    assert planned.to_dict() | {"dry_run": False} == done.to_dict()
    assert before - set(project.odb.list_oids()) == set(done.objects["cache"])
    assert live_objects(project) <= set(project.odb.list_oids())  # nothing live lost
    for run in done.runs:
        assert run.start_time < cutoff * 1000
        stored = project.store.get_run(run.run_id)
        assert stored.info.lifecycle_stage == "deleted"
        assert "keep" not in stored.data.tags
