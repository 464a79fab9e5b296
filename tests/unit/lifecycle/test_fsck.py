"""fsck: corrupt cache objects are found, quarantined and traced to tracked paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cairn.errors import IntegrityError
from cairn.lifecycle.fsck import fsck
from cairn.objects.hashing import hash_bytes
from cairn.objects.odb import ObjectDB
from cairn.objects.tree import read_tree
from cairn.project import pointer
from cairn.project.context import ProjectContext
from cairn.project.pointer import PointerFile
from cairn.project.tracked import TrackedPath
from cairn.workspace.add import add
from tests.unit.lifecycle.test_gc import on_remote, project, push_everything, remote, track

__all__ = ["project", "remote"]  # fixtures shared with test_gc


def flip_a_byte(path: Path | str) -> None:
    path = Path(path)
    os.chmod(path, 0o644)  # cache objects are read-only; corruption does not care
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_clean_cache_passes(project: ProjectContext) -> None:
    track(project, "a.bin", "a")
    track(project, "b.bin", "b")
    result = fsck(project)
    assert result.ok and result.checked == 2 and result.problems == []
    result.raise_for_problems()


def test_a_flipped_byte_is_found_quarantined_and_traced(project: ProjectContext) -> None:
    oid = track(project, "models/classifier.pkl", "good weights")
    track(project, "models/copy.pkl", "good weights")  # same object, two paths
    flip_a_byte(project.odb.oid_to_path(oid))
    result = fsck(project)
    [problem] = result.problems
    assert (problem.oid, problem.store, problem.kind, problem.quarantined) == (
        oid, "cache", "corrupt", True)
    assert problem.paths == ("models/classifier.pkl", "models/copy.pkl")
    assert not project.odb.exists(oid)
    assert (project.odb.quarantine_dir / oid).read_bytes() != b"good weights"
    expected = rf"fsck found 1 bad object.*{oid}.*quarantine.*cairn pull"
    with pytest.raises(IntegrityError, match=expected):
        result.raise_for_problems()


def test_read_only_objects_are_hashed_too(project: ProjectContext) -> None:
    oid = track(project, "a.bin", "read-only bytes")
    path = Path(project.odb.oid_to_path(oid))
    stamp = path.stat()
    flip_a_byte(path)
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # same size, same mtime
    os.chmod(path, 0o444)
    assert [p.oid for p in fsck(project).problems] == [oid]


def test_corrupt_files_inside_directories_are_named_by_path(project: ProjectContext) -> None:
    for i in range(40):  # enough objects for the parallel path
        part = "a" if i % 2 else "b"
        (project.root / "data" / part).mkdir(parents=True, exist_ok=True)
        (project.root / f"data/{part}/f{i}.txt").write_text(f"row {i}")
    add(project, ["data"])
    root = pointer.load(project.root / "data.cairn").outs[0].digest
    sub_b = next(e.digest for e in read_tree(project.odb, root) if e.name == "b")
    flip_a_byte(project.odb.oid_to_path(hash_bytes(b"row 7")))
    flip_a_byte(project.odb.oid_to_path(sub_b))
    result = fsck(project, jobs=4)
    assert result.checked == 43  # 40 files, 3 manifests
    assert {p.oid: p.paths for p in result.problems} == {
        hash_bytes(b"row 7"): ("data/a/f7.txt",), sub_b: ("data/b",)}


def test_a_manifest_that_does_not_parse_is_reported_not_quarantined(
        project: ProjectContext) -> None:
    bogus = project.odb.add_bytes(b'{"format": 99, "entries": []}')
    pointer.write(PointerFile(project.root / "data.cairn", (TrackedPath("data", bogus, 0, 0),)))
    result = fsck(project)
    [problem] = result.problems
    assert (problem.oid, problem.kind, problem.paths, problem.quarantined) == (
        bogus, "bad manifest", ("data",), False)
    assert "unknown manifest format 99" in problem.detail
    assert project.odb.exists(bogus)


def test_remote_objects_are_verified_and_left_alone(project: ProjectContext,
                                                    remote: ObjectDB) -> None:
    good = track(project, "a.bin", "fine")
    bad = track(project, "b.bin", "will rot on the remote")
    push_everything(project.odb, remote)
    remote.put_verified(bad, b"rotten", replace=True)  # bytes of another name
    result = fsck(project, remote="origin")
    assert (result.checked, result.remote, result.remote_checked) == (2, "origin", 2)
    [problem] = result.problems
    assert (problem.oid, problem.store, problem.paths, problem.quarantined) == (
        bad, "origin", ("b.bin",), False)
    assert problem.detail == f"bytes hash to {hash_bytes(b'rotten')}"
    assert on_remote(remote) == {good, bad} and project.odb.exists(bad)
