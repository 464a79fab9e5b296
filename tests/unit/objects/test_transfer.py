"""transfer between the cache and a remote, both ways: only missing objects move, in
parallel, verified on the way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cairn.errors import CairnError, IntegrityError, NotFoundError, RemoteError
from cairn.objects.hashing import hash_bytes
from cairn.objects.odb import ObjectDB
from cairn.objects.transfer import TransferResult, transfer
from cairn.remotes.connect import connect
from cairn.remotes.failures import translate_error


@pytest.fixture
def odb(tmp_path: Path) -> ObjectDB:
    return ObjectDB.local(tmp_path / "cache")


@pytest.fixture
def clone_odb(tmp_path: Path) -> ObjectDB:
    return ObjectDB.local(tmp_path / "clone-cache")


@pytest.fixture
def remote(tmp_path: Path) -> ObjectDB:
    return connect("origin", str(tmp_path / "store"))


def add_objects(odb: ObjectDB, count: int) -> list[str]:
    return [odb.add_bytes(f"object number {i}".encode()) for i in range(count)]


def test_push_moves_only_what_is_missing(odb: ObjectDB, remote: ObjectDB) -> None:
    oids = add_objects(odb, 50)
    first = transfer(odb, remote, oids[:20], jobs=4)
    assert sorted(first.transferred) == sorted(oids[:20]) and first.present == 0
    assert first.bytes == sum(len(f"object number {i}") for i in range(20))
    second = transfer(odb, remote, oids + oids[:5], jobs=4)  # duplicates count once
    assert sorted(second.transferred) == sorted(oids[20:])
    assert second.present == 20 and not second.failed
    again = transfer(odb, remote, oids, jobs=4)
    assert again.transferred == [] and again.present == 50


def test_fetch_moves_only_what_the_cache_lacks(odb: ObjectDB, clone_odb: ObjectDB,
                                               remote: ObjectDB) -> None:
    oids = add_objects(odb, 40)
    transfer(odb, remote, oids, jobs=4)
    transfer(remote, clone_odb, oids[:10], jobs=4)
    result = transfer(remote, clone_odb, oids, jobs=4)
    assert sorted(result.transferred) == sorted(oids[10:]) and result.present == 10
    assert all(clone_odb.read_bytes(oid) == odb.read_bytes(oid) for oid in oids)


def test_progress_advances_once_per_object_moved(odb: ObjectDB, remote: ObjectDB) -> None:
    ticks: list[int] = []
    transfer(odb, remote, add_objects(odb, 12), jobs=3, progress=ticks.append)
    assert ticks == [1] * 12


def test_on_total_hears_how_many_objects_will_move(odb: ObjectDB, clone_odb: ObjectDB,
                                                  remote: ObjectDB) -> None:
    oids = add_objects(odb, 5)
    transfer(odb, remote, oids[:2], jobs=2)
    totals: list[int] = []
    ticks: list[int] = []
    transfer(odb, remote, oids + oids[:1], jobs=2, progress=ticks.append,
                  on_total=totals.append)
    assert totals == [3] and ticks == [1] * 3  # present and duplicate ones do not count
    transfer(remote, clone_odb, oids, jobs=2, on_total=totals.append)
    assert totals == [3, 5]


def test_push_refuses_a_corrupt_cache_object_and_sends_the_rest(odb: ObjectDB,
                                                                 remote: ObjectDB) -> None:
    oids = add_objects(odb, 5)
    bad = oids[2]
    path = Path(odb.oid_to_path(bad))
    path.chmod(0o644)
    path.write_bytes(b"bit rot")
    result = transfer(odb, remote, oids, jobs=2)
    assert set(result.failed) == {bad} and isinstance(result.failed[bad], IntegrityError)
    assert sorted(result.transferred) == sorted(set(oids) - {bad})
    assert bad not in set(remote.list_oids())
    with pytest.raises(IntegrityError, match=f"cache object {bad} is corrupt"):
        result.raise_for_failures("pushed")


def test_push_reports_objects_in_neither_place(odb: ObjectDB, remote: ObjectDB) -> None:
    ghost = hash_bytes(b"never added")
    result = transfer(odb, remote, [ghost, *add_objects(odb, 1)])
    assert isinstance(result.failed[ghost], NotFoundError)
    assert "neither the cache nor remote 'origin'" in str(result.failed[ghost])
    assert len(result.transferred) == 1


def test_fetch_verifies_and_installs_only_good_objects(odb: ObjectDB, clone_odb: ObjectDB,
                                                       remote: ObjectDB, tmp_path: Path) -> None:
    oids = add_objects(odb, 4)
    transfer(odb, remote, oids)
    bad = oids[1]
    stored = tmp_path / "store" / "objects" / bad[:2] / bad[2:]
    stored.write_bytes(b"tampered on the remote")
    missing = hash_bytes(b"not on the remote")
    result = transfer(remote, clone_odb, [*oids, missing], jobs=2)
    assert isinstance(result.failed[bad], IntegrityError)
    assert isinstance(result.failed[missing], NotFoundError)
    assert not clone_odb.exists(bad) and not clone_odb.exists(missing)
    assert sorted(result.transferred) == sorted(set(oids) - {bad})
    with pytest.raises(CairnError, match="2 objects could not be fetched"):
        result.raise_for_failures("fetched")


def test_push_replaces_objects_known_corrupt_on_the_remote(odb: ObjectDB, clone_odb: ObjectDB,
                                                          remote: ObjectDB,
                                                          tmp_path: Path) -> None:
    oids = add_objects(odb, 3)
    transfer(odb, remote, oids)
    bad = oids[0]
    stored = tmp_path / "store" / "objects" / bad[:2] / bad[2:]
    stored.chmod(0o644)
    stored.write_bytes(b"tampered on the remote")
    assert transfer(odb, remote, oids).transferred == []  # there, so not sent again
    elsewhere = hash_bytes(b"corrupt there, in no cache")
    # Known corrupt: replaced even outside the objects asked for; one the cache lacks
    # is listed, not failed.
    result = transfer(odb, remote, oids[1:], replace={bad, elsewhere})
    assert result.transferred == result.replaced == [bad]
    assert result.unrepaired == [elsewhere] and not result.failed
    transfer(remote, clone_odb, oids)
    assert clone_odb.read_bytes(bad) == odb.read_bytes(bad)


class UnreachableFS:
    """A filesystem whose every call fails the way a refused connection does."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: object, **kwargs: object) -> None:
            raise ConnectionRefusedError(111, "Connection refused")
        return fail


def test_a_failing_remote_stops_the_transfer_with_one_error(odb: ObjectDB) -> None:
    remote = ObjectDB(UnreachableFS(), "bucket/store", name="origin", url="s3://bucket/store",
                      scheme="s3", endpoint="http://127.0.0.1:9", explain=translate_error)
    with pytest.raises(RemoteError, match=r"remote 'origin' .* cannot reach http://127\.0\.0\.1:9"):
        transfer(odb, remote, add_objects(odb, 3))
    with pytest.raises(RemoteError, match="cannot reach"):
        transfer(remote, ObjectDB.local(odb.root.parent / "empty"), add_objects(odb, 3))


def test_raise_for_failures_is_silent_when_all_went_well() -> None:
    TransferResult(transferred=["x"]).raise_for_failures("pushed")
