"""du: logical size of tracked data against what the cache and a remote store."""

from __future__ import annotations

from cairn.lifecycle.du import StoreUsage, du
from cairn.objects.hashing import hash_bytes
from cairn.objects.odb import ObjectDB
from cairn.project import pointer
from cairn.project.context import ProjectContext
from cairn.store.entities import Artifact
from cairn.workspace.add import add
from tests.unit.lifecycle.test_gc import commit, project, push_everything, remote, track

__all__ = ["project", "remote"]  # fixtures shared with test_gc


def test_a_duplicated_file_has_a_dedup_ratio_of_two(project: ProjectContext) -> None:
    track(project, "train.csv", b"x" * 4096)
    track(project, "backup/train.csv", b"x" * 4096)
    usage = du(project)
    assert (usage.outs, usage.files, usage.logical_bytes) == (2, 2, 8192)
    [cache] = usage.stores
    assert cache == StoreUsage("cache", 1, 4096)
    assert usage.dedup_ratio(cache) == 2.0


def test_directories_count_their_files_and_manifests_are_stored(project: ProjectContext) -> None:
    for name in ("a", "b", "c"):
        (project.root / "data").mkdir(exist_ok=True)
        (project.root / f"data/{name}.txt").write_text("same")
    add(project, ["data"])
    usage = du(project)
    assert (usage.outs, usage.files, usage.logical_bytes) == (1, 3, 12)
    [cache] = usage.stores
    assert cache.objects == 2 and cache.bytes > 4  # one file object, one manifest


def test_an_empty_repository_has_no_ratio(project: ProjectContext) -> None:
    usage = du(project)
    assert usage.logical_bytes == 0 and usage.dedup_ratio(usage.stores[0]) is None
    assert usage.to_dict()["stores"] == [
        {"store": "cache", "objects": 0, "bytes": 0, "dedup_ratio": None}]


def test_a_remote_is_measured_too(project: ProjectContext, remote: ObjectDB) -> None:
    track(project, "a.bin", b"a" * 100)
    track(project, "b.bin", b"a" * 100)
    push_everything(project.odb, remote)
    track(project, "a.bin", b"new" * 10)  # not pushed yet
    usage = du(project, remote="origin")
    assert [s.store for s in usage.stores] == ["cache", "origin"]
    assert usage.stores[1] == StoreUsage("origin", 1, 100)
    assert usage.dedup_ratio(usage.stores[1]) == 1.3


def test_every_version_git_keeps_counts_in_full(project: ProjectContext) -> None:
    """Logical is what a copy per version would take: an unchanged file at two tags
    counts twice and is stored once; a changed one counts each version."""
    track(project, "same.bin", b"s" * 1000)
    track(project, "data.bin", b"1" * 500)
    commit(project, "v1", "v1")
    track(project, "data.bin", b"2" * 700)
    commit(project, "v2", "v2")
    track(project, "data.bin", b"3" * 900)  # the workspace: not committed

    usage = du(project)

    # same.bin: v1, v2, workspace (3 x 1000); data.bin: 500 + 700 + 900
    assert usage.logical_bytes == 3000 + 2100
    [cache] = usage.stores
    assert cache.bytes == 1000 + 500 + 700 + 900
    assert usage.dedup_ratio(cache) == 5100 / 3100


def test_the_registry_counts_a_logged_directory_once(project: ProjectContext) -> None:
    """A run's directory artifact is recorded with every file below it; du counts the
    directory, not its files again."""
    (project.root / "model").mkdir()
    (project.root / "model" / "w.bin").write_bytes(b"w" * 300)
    (project.root / "model" / "c.json").write_bytes(b"{}")
    add(project, ["model"])
    ptr = pointer.pointer_path_for(project.root / "model")
    tree = pointer.load(ptr).outs[0].digest
    ptr.unlink()  # only the run names it now
    store = project.store
    experiment = store.create_experiment("e")
    run = store.create_run(experiment, "u", 1).info.run_id
    files = {"w.bin": b"w" * 300, "c.json": b"{}"}
    store.log_artifacts(run, [Artifact(run, "model", tree, 302, True)] + [
        Artifact(run, f"model/{n}", hash_bytes(b), len(b)) for n, b in files.items()])
    usage = du(project)
    assert (usage.outs, usage.files, usage.logical_bytes) == (1, 2, 302)
