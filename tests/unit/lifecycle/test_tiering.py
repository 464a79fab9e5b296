"""tier apply with local directory remotes: what only Archived versions need goes to the
cold remote and comes back on promotion; what anything else needs stays hot; the dry run
is the plan; a killed apply loses nothing; pull, push and load_model know the cold tier."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import cairn
from cairn.commands import data, models
from cairn.errors import ConfigError, UserError
from cairn.lifecycle.tiering import TierResult, tier_apply
from cairn.objects.hashing import hash_bytes
from cairn.objects.odb import ObjectDB
from cairn.project.context import ProjectContext, open_project
from cairn.remotes.connect import open_remote
from cairn.remotes.settings import remote_add, remote_modify
from cairn.tracking import fluent
from cairn.workspace.add import add
from cairn.workspace.init import init

SHARED = b"tokenizer both versions ship"


def run_git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProjectContext]:
    """A git project with a hot default remote `origin` and a cold remote `cold`, both
    local directories, its tracking database the project's own."""
    root = tmp_path / "repo"
    root.mkdir()
    run_git(root, "init", "-q", "-b", "main")
    init(root, hooks=False)
    monkeypatch.chdir(root)
    fluent._reset_for_tests()
    with open_project(root) as p:
        remote_add(p.config, "origin", str(tmp_path / "hot"), default=True)
        remote_add(p.config, "cold", str(tmp_path / "cold"))
        remote_modify(p.config, "cold", "tier", "cold")
        yield p
    fluent._reset_for_tests()


def hot(project: ProjectContext) -> ObjectDB:
    return open_remote(project.config, "origin")


def cold(project: ProjectContext) -> ObjectDB:
    return open_remote(project.config, "cold")


def held(store: ObjectDB) -> set[str]:
    return set(store.list_oids())


def model_dir(tmp_path: Path, name: str, files: dict[str, bytes]) -> Path:
    where = tmp_path / name
    where.mkdir()
    for rel, content in files.items():
        (where / rel).write_bytes(content)
    return where


def register(tmp_path: Path, name: str, files: dict[str, bytes], model: str = "fraud") -> str:
    """Register a model directory; its version's digest."""
    return models.register(source=str(model_dir(tmp_path, name, files)), name=model).digest


def two_versions(tmp_path: Path) -> tuple[str, str]:
    """fraud v1 and v2, sharing one file, pushed; the digests of their own weights."""
    register(tmp_path, "v1", {"weights.bin": b"weights of v1", "tokenizer.json": SHARED})
    register(tmp_path, "v2", {"weights.bin": b"weights of v2", "tokenizer.json": SHARED})
    data.push()
    return hash_bytes(b"weights of v1"), hash_bytes(b"weights of v2")


def archive(version: int, model: str = "fraud") -> None:
    models.promote(name=model, version=version, stage="Archived")


def test_an_archived_version_moves_its_own_objects_to_cold_and_back_when_promoted(
        project: ProjectContext, tmp_path: Path) -> None:
    v1_weights, v2_weights = two_versions(tmp_path)
    before = held(hot(project))
    archive(1)

    result = tier_apply(project)

    assert result.moved_to_cold == [v1_weights]
    assert result.paths[v1_weights] == "models:/fraud/1/weights.bin"
    assert held(cold(project)) == {v1_weights}
    assert held(hot(project)) == before - {v1_weights}  # shared file, manifests, v2 stay
    assert {hash_bytes(SHARED), v2_weights} <= held(hot(project))
    assert tier_apply(project).to_cold == {}  # nothing left to do

    models.promote(name="fraud", version=1, stage="Staging")
    back = tier_apply(project)

    assert back.moved_to_hot == [v1_weights]
    assert held(hot(project)) == before and held(cold(project)) == set()
    assert hot(project).verify(v1_weights)


def test_the_dry_run_is_the_plan_the_apply_carries_out(project: ProjectContext,
                                                       tmp_path: Path) -> None:
    v1_weights, _ = two_versions(tmp_path)
    archive(1)
    before = held(hot(project))

    dry = tier_apply(project, dry_run=True)

    assert dry.dry_run and dry.to_cold == {v1_weights: len(b"weights of v1")}
    assert dry.bytes_to_cold == len(b"weights of v1") and dry.to_hot == {}
    assert held(hot(project)) == before and held(cold(project)) == set()
    done = tier_apply(project)
    assert done.to_cold == dry.to_cold
    assert sorted(done.moved_to_cold) == sorted(dry.to_cold)


def test_what_else_references_an_archived_versions_object_keeps_it_hot(
        project: ProjectContext, tmp_path: Path) -> None:
    v1_weights, _ = two_versions(tmp_path)
    (project.root / "weights.bin").write_bytes(b"weights of v1")  # tracked in the workspace
    add(project, ["weights.bin"])
    register(tmp_path, "other", {"w.bin": b"weights of v1"}, model="churn")  # and a version
    archive(1)
    assert tier_apply(project).to_cold == {}
    (project.root / "weights.bin.cairn").unlink()
    assert tier_apply(project).to_cold == {}  # churn v1 still names it
    archive(1, model="churn")
    assert tier_apply(project).moved_to_cold == [v1_weights]


def test_a_version_an_alias_names_stays_hot(project: ProjectContext, tmp_path: Path) -> None:
    v1_weights, _ = two_versions(tmp_path)
    archive(1)
    models.set_alias(name="fraud", alias="baseline", version=1)
    assert tier_apply(project).to_cold == {}
    models.delete_alias(name="fraud", alias="baseline")
    assert tier_apply(project).moved_to_cold == [v1_weights]


def test_a_runs_model_goes_cold_with_its_archived_versions(project: ProjectContext,
                                                            tmp_path: Path) -> None:
    """The run's artifact is the version's digest: it does not keep the objects hot once
    every version registered from it is Archived."""
    weights = b"weights the run logged"
    with cairn.start_run() as run:
        cairn.log_artifacts(str(model_dir(tmp_path, "logged", {"w.bin": weights})), "model")
    uri = f"runs:/{run.info.run_id}/model"
    models.register(source=uri, name="fraud")
    models.register(source=uri, name="fraud")
    data.push()
    archive(1)
    assert tier_apply(project).to_cold == {}  # v2, from the same run, is not Archived
    archive(2)
    assert tier_apply(project).moved_to_cold == [hash_bytes(weights)]


def test_an_archived_versions_package_goes_cold_and_the_others_stay(
        project: ProjectContext, tmp_path: Path) -> None:
    two_versions(tmp_path)
    packages = {version: project.odb.add_bytes(f"package of v{version}".encode())
                for version in (1, 2)}
    for version, oid in packages.items():
        project.store.record_package("fraud", version, "sha256:" + f"{version}" * 64, oid, 12)
    data.push()
    archive(1)
    moved = tier_apply(project).moved_to_cold
    assert packages[1] in moved and packages[2] not in moved
    assert packages[2] in held(hot(project))


def test_pull_takes_what_the_hot_remote_lacks_from_the_cold_one(project: ProjectContext,
                                                                tmp_path: Path) -> None:
    """A tag's data that only an Archived version now shares went cold; checking out the
    tag and pulling in a fresh cache gets it."""
    model = project.root / "model.bin"
    model.write_bytes(b"weights of v1")
    add(project, ["model.bin"])
    run_git(project.root, "add", "-A")
    run_git(project.root, "commit", "-qm", "v1")
    run_git(project.root, "tag", "v1")
    register(tmp_path, "v1", {"model.bin": b"weights of v1"})  # the same bytes
    model.unlink()
    model.write_bytes(b"weights of v2")
    add(project, ["model.bin"])
    run_git(project.root, "commit", "-qam", "v2")
    data.push(all_tags=True)
    archive(1)
    assert tier_apply(project).moved_to_cold == [hash_bytes(b"weights of v1")]

    project.odb.remove(project.odb.list_oids())  # a fresh cache
    run_git(project.root, "checkout", "-q", "v1")
    pulled = data.pull(force=True)

    assert not pulled.fetched.transferred.failed
    assert model.read_bytes() == b"weights of v1"


def test_load_model_takes_an_archived_versions_objects_from_the_cold_remote(
        project: ProjectContext, tmp_path: Path) -> None:
    from cairn.registry.loading import model_path

    v1_weights, _ = two_versions(tmp_path)
    archive(1)
    tier_apply(project)
    project.odb.remove([v1_weights])
    path, _ = model_path("models:/fraud/1")
    assert (path / "weights.bin").read_bytes() == b"weights of v1"


def test_push_does_not_send_back_what_the_cold_remote_holds(project: ProjectContext,
                                                            tmp_path: Path) -> None:
    """Another clone's push (a clone that never learnt what tier apply did) leaves the
    tiering in place."""
    v1_weights, _ = two_versions(tmp_path)
    archive(1)
    tier_apply(project)
    (project.tmp_dir / "remotes.db").unlink()  # this clone's knowledge of remotes
    data.push()
    assert v1_weights not in held(hot(project))
    assert held(cold(project)) == {v1_weights}


def test_tier_settings_are_checked(project: ProjectContext, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"remote.cold.tier is 'frozen'; it takes \"hot\""):
        remote_modify(project.config, "cold", "tier", "frozen")
    with pytest.raises(ConfigError, match="storage_class applies to s3:// remotes only"):
        remote_modify(project.config, "cold", "storage_class", "GLACIER")
    with pytest.raises(UserError, match="'origin' is not marked cold"):
        tier_apply(project, cold="origin")
    with pytest.raises(UserError, match="remote 'cold' is marked tier = \"cold\""):
        tier_apply(project, hot="cold")
    remote_modify(project.config, "cold", "tier", "hot")
    with pytest.raises(ConfigError, match="no remote is marked tier = \"cold\""):
        tier_apply(project)
    project.config.set("remote.cold.tier", "Cold")  # hand-edited: checked when read
    with pytest.raises(ConfigError, match="remote.cold.tier is 'Cold'"):
        data.pull()


# -- a killed apply ------------------------------------------------------------------------

SLOW_APPLY = """
import sys, time
from cairn.lifecycle import tiering
from cairn.objects import transfer

copy = transfer.copy_object

def slow(src, dst, oid, replace=False):
    time.sleep(0.01)
    return copy(src, dst, oid, replace)

transfer.copy_object = slow
tiering.BATCH = 4  # objects are removed from the hot remote four at a time
from cairn.cli.main import main
sys.argv = ["cairn", "tier", "apply", "-j", "1"]
main()
"""


def test_a_killed_apply_loses_nothing_and_a_rerun_finishes_it(project: ProjectContext,
                                                              tmp_path: Path) -> None:
    files = {f"shard{i:02d}.bin": f"shard {i} of v1".encode() for i in range(60)}
    register(tmp_path, "v1", files)
    data.push()
    archive(1)
    wanted = {hash_bytes(content) for content in files.values()}
    cold_dir = tmp_path / "cold" / "objects"
    child = subprocess.Popen([sys.executable, "-c", SLOW_APPLY], cwd=project.root,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while (sum(1 for _ in cold_dir.glob("*/*")) if cold_dir.exists() else 0) < 10 \
                and time.monotonic() < deadline:
            time.sleep(0.002)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    on_hot, on_cold = held(hot(project)), held(cold(project))
    assert on_cold and wanted & on_hot, "killed before or after the move: no test"
    assert wanted <= on_hot | on_cold  # every object on one remote at least
    for oid in wanted:
        assert (cold(project) if oid in on_cold else hot(project)).verify(oid)

    rerun: TierResult = tier_apply(project)

    assert not rerun.failed
    assert held(cold(project)) == wanted
    assert not wanted & held(hot(project))
    assert all(cold(project).verify(oid) for oid in wanted)
