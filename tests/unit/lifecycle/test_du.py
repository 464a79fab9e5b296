"""du: logical size of tracked data against what the cache and a remote store."""

from __future__ import annotations

from cairn.lifecycle.du import StoreUsage, du
from cairn.objects.odb import ObjectDB
from cairn.project.context import ProjectContext
from cairn.workspace.add import add
from tests.unit.lifecycle.test_gc import project, push_everything, remote, track

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
