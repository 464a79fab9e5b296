import os
import stat
from pathlib import Path

import pytest

from cairn.errors import IntegrityError, ObjectNotFound, UserError
from cairn.objects.hashing import hash_bytes
from cairn.objects.odb import ObjectDB


@pytest.fixture
def odb(tmp_path: Path) -> ObjectDB:
    return ObjectDB.local(tmp_path / "cache")


def test_objects_live_under_their_digest_read_only(odb: ObjectDB, tmp_path: Path) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights")
    oid, size = odb.add_file(src)
    assert (oid, size) == (hash_bytes(b"weights"), 7)
    path = odb.root / "objects" / oid[:2] / oid[2:]
    assert path.read_bytes() == b"weights"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert list(odb.list_oids()) == [oid]
    assert [p.name for p in odb.root.rglob("*") if p.is_file()] == [oid[2:]]  # no temp left


def test_identical_content_is_stored_once(odb: ObjectDB, tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(b"same")
        odb.add_file(tmp_path / name)
    assert odb.add_bytes(b"same") == hash_bytes(b"same")
    assert len(list(odb.list_oids())) == 1


def test_corruption_is_detected_on_read_and_verify(odb: ObjectDB) -> None:
    oid = odb.add_bytes(b"important bytes")
    path = Path(odb.oid_to_path(oid))
    os.chmod(path, 0o644)
    path.write_bytes(b"importent bytes")
    assert not odb.verify(oid)
    with pytest.raises(IntegrityError, match="corrupt"):
        odb.read_bytes(oid)
    moved = odb.quarantine(oid)
    assert moved.read_bytes() == b"importent bytes"
    assert not odb.exists(oid)


def test_missing_and_malformed_oids_are_refused(odb: ObjectDB) -> None:
    with pytest.raises(ObjectNotFound):
        odb.read_bytes(hash_bytes(b"never stored"))
    with pytest.raises(UserError, match="not a BLAKE3 digest"):
        odb.oid_to_path("../../etc/passwd")


def test_leftovers_of_killed_writers_are_removable(odb: ObjectDB) -> None:
    oid = odb.add_bytes(b"kept")
    stray = Path(odb.oid_to_path(oid)).with_name("ffff.12345678.tmp")
    stray.write_bytes(b"half an obj")
    os.makedirs(odb.tmp_dir, exist_ok=True)
    Path(odb.tmp_dir, "0123abcd").write_bytes(b"half a download")
    assert list(odb.list_oids()) == [oid]  # temp names are never taken for objects
    assert odb.remove_leftovers() == 2
    assert not stray.exists() and odb.read_bytes(oid) == b"kept"


@pytest.mark.parametrize("size", [100, 3 << 20], ids=["small", "large"])
def test_a_truncated_object_is_replaced_by_a_good_copy(odb: ObjectDB, tmp_path: Path,
                                                       size: int) -> None:
    # Regression: re-adding kept the truncated leftover and threw the good copy away.
    src = tmp_path / "data.bin"
    src.write_bytes(os.urandom(size))
    oid, _ = odb.add_file(src)
    obj = Path(odb.oid_to_path(oid))
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as f:
        f.truncate(size // 2)
    odb.add_file(src)
    assert obj.read_bytes() == src.read_bytes()
    assert odb.verify(oid) and stat.S_IMODE(obj.stat().st_mode) == 0o444


@pytest.mark.parametrize("count", [3, 2500])  # one thread, and the threaded unlink
def test_remove_deletes_exactly_those_objects(odb: ObjectDB, count: int) -> None:
    oids = [odb.add_bytes(f"object {i}".encode()) for i in range(count + 1)]
    kept, doomed = oids[0], oids[1:]
    odb.remove([*doomed, hash_bytes(b"never stored")])  # one already gone is fine
    assert set(odb.list_oids()) == {kept}
    odb.remove(doomed)  # and again
    assert odb.read_bytes(kept) == b"object 0"
