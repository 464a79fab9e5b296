"""A remote ObjectDB: one conformance suite over local, memory and (marked s3) the moto S3
server; then building remotes from config, and the `cairn remote` config use cases."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cairn.config import Config
from cairn.errors import IntegrityError, NotFoundError, ObjectNotFound, RemoteError, UserError
from cairn.objects import odb as odb_module
from cairn.objects.hashing import hash_bytes
from cairn.objects.odb import ObjectDB
from cairn.objects.parallel import run_parallel
from cairn.objects.transfer import copy_object
from cairn.remotes import leftovers
from cairn.remotes.connect import connect, open_remote
from cairn.remotes.settings import (
    remote_add,
    remote_default,
    remote_list,
    remote_modify,
    remote_remove,
)
from tests.s3_server import S3Bucket, s3_bucket, s3_server  # noqa: F401 - fixtures


@pytest.fixture(params=["local", "memory", pytest.param("s3", marks=pytest.mark.s3)])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectDB:
    if request.param == "local":
        return connect("origin", str(tmp_path / "store"))
    if request.param == "memory":
        return connect("origin", f"memory://cairn-test-{uuid.uuid4().hex}/store")
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return connect("origin", bucket.url(), {"endpoint_url": bucket.endpoint})


@pytest.fixture
def odb(tmp_path: Path) -> ObjectDB:
    return ObjectDB.local(tmp_path / "cache")


@pytest.fixture
def other_odb(tmp_path: Path) -> ObjectDB:
    return ObjectDB.local(tmp_path / "other-cache")


def corrupt_cache_object(odb: ObjectDB, oid: str) -> None:
    path = Path(odb.oid_to_path(oid))
    path.chmod(0o644)
    path.write_bytes(b"not what was added")


# -- conformance: every backend behaves the same -------------------------------------------


@pytest.mark.parametrize("data", [b"", b"small object", os.urandom(300_000)],
                         ids=["empty", "small", "300k"])
def test_round_trip_keeps_bytes(remote: ObjectDB, odb: ObjectDB, other_odb: ObjectDB,
                                data: bytes) -> None:
    oid = odb.add_bytes(data)
    assert copy_object(odb, remote, oid) == len(data)
    assert remote.exists(oid)
    assert list(remote.list_oids()) == [oid]
    assert remote.sizes() == {oid: len(data)}
    assert copy_object(remote, other_odb, oid) == len(data)
    assert other_odb.read_bytes(oid) == data
    with remote.open(oid) as f:
        assert f.read() == data


def test_large_objects_stream_in_chunks(remote: ObjectDB, odb: ObjectDB, other_odb: ObjectDB,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # Shrink the limits so a small object takes the multipart / ranged-read paths.
    monkeypatch.setattr(odb_module, "CHUNK", 4096)
    for data in (os.urandom(3 * 4096 + 17), os.urandom(2 * 4096)):
        oid = odb.add_bytes(data)
        copy_object(odb, remote, oid)
        copy_object(remote, other_odb, oid)
        assert other_odb.read_bytes(oid) == data


def test_exists_many_asks_one_by_one_or_lists(remote: ObjectDB, odb: ObjectDB,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    stored = [odb.add_bytes(f"object {i}".encode()) for i in range(5)]
    for oid in stored[:3]:
        copy_object(odb, remote, oid)
    assert remote.exists_many(stored, jobs=4) == set(stored[:3])
    monkeypatch.setattr(odb_module, "FEW", 2)  # now a listing answers
    assert remote.exists_many(stored, jobs=4) == set(stored[:3])
    assert remote.sizes(stored[:2]) == {oid: len(f"object {i}") for i, oid in
                                        enumerate(stored[:2])}
    assert remote.exists_many([], jobs=4) == set()


def test_an_empty_remote_lists_nothing(remote: ObjectDB) -> None:
    assert list(remote.list_oids()) == []
    assert remote.sizes() == {}
    assert remote.exists_many([hash_bytes(str(i).encode()) for i in range(40)]) == set()


def test_download_refuses_corrupt_bytes_and_installs_nothing(
        remote: ObjectDB, odb: ObjectDB, other_odb: ObjectDB) -> None:
    oid = odb.add_bytes(b"the real bytes")
    path = remote.oid_to_path(oid)
    remote.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    remote.fs.pipe_file(path, b"tampered bytes")
    with pytest.raises(IntegrityError, match="corrupt.*nothing was installed"):
        copy_object(remote, other_odb, oid)
    assert not other_odb.exists(oid)
    assert [p for p in other_odb.root.rglob("*") if p.is_file()] == []  # no leftovers


def test_download_of_an_absent_object_is_not_found(remote: ObjectDB, odb: ObjectDB) -> None:
    oid = hash_bytes(b"never pushed")
    with pytest.raises(ObjectNotFound, match="remote 'origin'"):
        copy_object(remote, odb, oid)
    with pytest.raises(ObjectNotFound):
        remote.open(oid)
    assert not odb.exists(oid)


@pytest.mark.parametrize("chunk", [4 << 20, 4], ids=["whole", "streamed"])
def test_upload_refuses_a_corrupt_cache_object(remote: ObjectDB, odb: ObjectDB,
                                               monkeypatch: pytest.MonkeyPatch,
                                               chunk: int) -> None:
    monkeypatch.setattr(odb_module, "CHUNK", chunk)
    oid = odb.add_bytes(b"good bytes")
    corrupt_cache_object(odb, oid)
    with pytest.raises(IntegrityError, match="cache object .* is corrupt"):
        copy_object(odb, remote, oid)
    assert not remote.exists(oid)
    assert list(remote.list_oids()) == []


def test_remove_deletes_and_ignores_absent_objects(remote: ObjectDB, odb: ObjectDB) -> None:
    kept, gone = odb.add_bytes(b"kept"), odb.add_bytes(b"gone")
    copy_object(odb, remote, kept)
    copy_object(odb, remote, gone)
    remote.remove([gone, hash_bytes(b"never there")])
    assert set(remote.list_oids()) == {kept}


@pytest.mark.parametrize("chunk", [4 << 20, 4], ids=["whole", "streamed"])
def test_upload_with_replace_puts_good_bytes_over_a_corrupt_copy(
        remote: ObjectDB, odb: ObjectDB, other_odb: ObjectDB, monkeypatch: pytest.MonkeyPatch,
        chunk: int) -> None:
    monkeypatch.setattr(odb_module, "CHUNK", chunk)
    data = b"the real bytes"
    oid = odb.add_bytes(data)
    copy_object(odb, remote, oid)
    path = remote.oid_to_path(oid)
    if remote.scheme == "file":
        os.chmod(path, 0o644)  # as a disk fault or a stray tool would not care
    remote.fs.pipe_file(path, b"tampered bytes")
    with pytest.raises(IntegrityError):
        copy_object(remote, other_odb, oid)
    copy_object(odb, remote, oid, replace=True)
    copy_object(remote, other_odb, oid)
    assert other_odb.read_bytes(oid) == data
    assert list(remote.list_oids()) == [oid]


def plant_leftovers(remote: ObjectDB, request: pytest.FixtureRequest) -> dict[str, int]:
    """What killed pushes leave in this backend's layout; name → bytes."""
    oid = hash_bytes(b"an object whose upload was killed")
    if remote.scheme == "s3":  # an unfinished multipart upload with one part
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        client: Any = bucket.client()
        key = f"store/objects/{oid[:2]}/{oid[2:]}"
        upload = client.create_multipart_upload(Bucket=bucket.name, Key=key)
        client.upload_part(Bucket=bucket.name, Key=key, UploadId=upload["UploadId"],
                           PartNumber=1, Body=b"x" * 1000)
        return {f"objects/{oid[:2]}/{oid[2:]} (unfinished upload)": 1000}
    planted = {"tmp/0123456789abcdef": 300, f"objects/{oid[:2]}/{oid[2:]}.0123abcd.tmp": 200,
               f"runs/{oid[:2]}/{oid[2:]}.4567cdef.tmp": 100}
    for name, size in planted.items():
        path = f"{remote.path}/{name}"
        remote.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        remote.fs.pipe_file(path, b"x" * size)
    return planted


def test_leftovers_of_killed_pushes_are_listed_by_age_and_removed(
        remote: ObjectDB, odb: ObjectDB, other_odb: ObjectDB,
        request: pytest.FixtureRequest) -> None:
    kept = odb.add_bytes(b"a finished object")
    copy_object(odb, remote, kept)
    planted = plant_leftovers(remote, request)
    now = time.time()
    assert leftovers.find(remote, now - 3600) == []  # written since: a live push may own them
    found = leftovers.find(remote, now + 3600)
    assert {f.describe(): f.size for f in found} == planted
    leftovers.remove(remote, found)
    assert leftovers.find(remote, now + 3600) == []
    assert list(remote.list_oids()) == [kept]  # objects are not leftovers
    copy_object(remote, other_odb, kept)
    leftovers.remove(remote, found)  # already gone: fine


def test_local_remote_leaves_no_temp_files(tmp_path: Path, odb: ObjectDB) -> None:
    remote = connect("origin", str(tmp_path / "store"))
    oid = odb.add_bytes(b"data")
    copy_object(odb, remote, oid)
    with remote.batch():
        copy_object(odb, remote, odb.add_bytes(b"more data"))
    files = sorted(p.name for p in (tmp_path / "store").rglob("*") if p.is_file())
    assert files == sorted([oid[2:], hash_bytes(b"more data")[2:]])  # no temp files left


# -- errors are one line naming the remote ---------------------------------------------


def test_an_unreachable_endpoint_is_one_remote_error(odb: ObjectDB) -> None:
    from tests.s3_server import free_port

    remote = connect("origin", "s3://bucket/store",
                     {"endpoint_url": f"http://127.0.0.1:{free_port()}", "key": "k",
                      "secret": "s"})
    with pytest.raises(RemoteError) as caught:
        copy_object(odb, remote, odb.add_bytes(b"x"))
    message = str(caught.value)
    assert "remote 'origin'" in message and "cannot reach http://127.0.0.1" in message
    assert "\n" not in message


def test_http_remotes_are_read_only(odb: ObjectDB) -> None:
    remote = connect("web", "https://example.invalid/store")
    with pytest.raises(RemoteError, match="read-only over HTTP"):
        copy_object(odb, remote, odb.add_bytes(b"x"))
    with pytest.raises(RemoteError, match="cannot list"):
        list(remote.list_oids())


def test_missing_backend_package_names_the_extra() -> None:
    with pytest.raises(RemoteError, match=r"pip install 'cairn\[gcs\]'"):
        connect("g", "gs://bucket/path")
    with pytest.raises(RemoteError, match=r"pip install 'cairn\[azure\]'"):
        connect("a", "azure://container/path")


def test_unknown_schemes_are_refused() -> None:
    with pytest.raises(RemoteError, match="unsupported URL scheme 'ftp'"):
        connect("f", "ftp://host/path")


def test_run_parallel_yields_per_item_errors_and_stops_on_others() -> None:
    def work(n: int) -> int:
        if n == 3:
            raise IntegrityError("bad three")
        if n == 50:
            raise RemoteError("remote gone")
        return n * 2

    results = dict(run_parallel(work, range(10), jobs=3, per_item=(IntegrityError,)))
    assert isinstance(results.pop(3), IntegrityError)
    assert results == {n: n * 2 for n in range(10) if n != 3}
    done = []
    with pytest.raises(RemoteError):
        for n, _ in run_parallel(work, range(10_000), jobs=2, per_item=(IntegrityError,)):
            done.append(n)
    assert len(done) < 200  # queued work was cancelled, not run


# -- building a remote from config ---------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> Config:
    dot = tmp_path / "project" / ".cairn"
    dot.mkdir(parents=True)
    return Config(dot, environ={})


def test_open_remote_needs_a_known_name_or_a_default(config: Config) -> None:
    with pytest.raises(RemoteError, match=r"no default remote.*cairn remote add -d"):
        open_remote(config)
    remote_add(config, "origin", "/srv/store")
    with pytest.raises(RemoteError, match=r"unknown remote 'nope' \(known: origin\).*"
                                          r"cairn remote list"):
        open_remote(config, "nope")
    assert open_remote(config, "origin").path == "/srv/store"
    config.set("remote.bare.jobs", "3")
    with pytest.raises(RemoteError, match="remote 'bare' has no url"):
        open_remote(config, "bare")


def test_relative_local_paths_are_relative_to_the_cairn_dir(config: Config,
                                                           tmp_path: Path) -> None:
    stored = remote_add(config, "origin", "../store", default=True, cwd=tmp_path / "project")
    assert stored == "../../store"
    remote = open_remote(config)
    assert remote.path == str(tmp_path / "store")
    assert remote.name == "origin" and remote.scheme == "file"


def test_s3_options_reach_s3fs(config: Config) -> None:
    remote_add(config, "s3", "s3://bucket/path", default=True)
    for option, value in [("endpoint_url", "http://127.0.0.1:9"), ("region", "eu-west-1"),
                          ("access_key_id", "AK"), ("secret", "SK"), ("jobs", "4")]:
        remote_modify(config, "s3", option, value)
    remote = open_remote(config)
    assert remote.jobs == 4 and remote.path == "bucket/path"
    assert remote.endpoint == "http://127.0.0.1:9"
    assert remote.fs.client_kwargs == {"endpoint_url": "http://127.0.0.1:9",
                                       "region_name": "eu-west-1"}
    assert remote.fs.key == "AK" and remote.fs.secret == "SK"
    assert remote.fs.config_kwargs["connect_timeout"] <= 5


def test_bad_fsspec_options_are_a_remote_error(config: Config) -> None:
    remote_add(config, "origin", "s3://bucket/path", default=True)
    remote_modify(config, "origin", "client_kwargs", "not a table")
    with pytest.raises(RemoteError, match="cannot use its options"):
        open_remote(config)


# -- `cairn remote` use cases ------------------------------------------------------------


def test_add_refuses_a_duplicate_name_unless_forced(config: Config) -> None:
    remote_add(config, "origin", "s3://one/path")
    remote_modify(config, "origin", "profile", "dev")
    with pytest.raises(UserError, match=r"remote 'origin' already exists.*--force"):
        remote_add(config, "origin", "s3://two/path")
    remote_add(config, "origin", "s3://two/path", force=True)
    [info] = remote_list(config)
    assert (info.name, info.url, info.options) == ("origin", "s3://two/path", {})


def test_add_checks_name_and_url(config: Config) -> None:
    with pytest.raises(UserError, match="bad remote name"):
        remote_add(config, "has.dot", "/srv/store")
    with pytest.raises(UserError, match="unsupported remote URL"):
        remote_add(config, "origin", "ftp://host/store")


@pytest.mark.parametrize("url", ["", "   ", "\t"])
def test_an_empty_url_is_refused(config: Config, url: str) -> None:
    with pytest.raises(UserError, match="the remote URL is empty"):
        remote_add(config, "origin", url)
    assert remote_list(config) == []
    remote_add(config, "origin", "/srv/store")
    with pytest.raises(UserError, match="the remote URL is empty"):
        remote_modify(config, "origin", "url", url)
    assert remote_list(config)[0].url == "/srv/store"


def test_a_remote_in_the_workspace_root_cache_or_git_is_refused(config: Config,
                                                                tmp_path: Path) -> None:
    root = tmp_path / "project"
    refused = [(".", "repository root itself"), ("./sub/..", "repository root itself"),
               (str(root), "repository root itself"), (f"file://{root}", "root itself"),
               (".cairn", ".cairn/ directory"), (".cairn/cache/store", ".cairn/ directory"),
               (".git", ".git directory"), (".git/cairn", ".git directory")]
    for url, why in refused:
        with pytest.raises(UserError, match=why):
            remote_add(config, "origin", url, cwd=root)
        with pytest.raises(UserError, match=why):
            remote_add(config, "origin", url, level="global", cwd=root)
    with pytest.raises(UserError, match="repository root itself"):
        remote_add(config, "origin", "..", cwd=root / ".cairn")
    assert remote_list(config) == []
    assert remote_add(config, "origin", "../store", cwd=root) == "../../store"
    assert remote_add(config, "inside", "store", cwd=root) == "../store"  # a plain subdir
    with pytest.raises(UserError, match="repository root itself"):
        remote_modify(config, "origin", "url", ".", cwd=root)
    assert open_remote(config, "origin").path == str(tmp_path / "store")


def test_default_modify_remove(config: Config) -> None:
    remote_add(config, "a", "/srv/a", default=True)
    remote_add(config, "b", "/srv/b", level="local")
    assert remote_default(config) == "a"
    assert [(i.name, i.default) for i in remote_list(config)] == [("a", True), ("b", False)]
    remote_default(config, "b")
    assert remote_default(config) == "b"
    with pytest.raises(NotFoundError, match="unknown remote 'c'"):
        remote_default(config, "c")
    remote_modify(config, "b", "key", "secret-ish", level="local")
    assert config.get("remote.b.key") == "secret-ish"
    remote_modify(config, "b", "key", unset=True, level="local")
    assert config.get("remote.b.key") is None
    assert remote_remove(config, "b") == ["local"]
    assert remote_default(config) is None  # the repo layer's default named it
    remote_default(config, "a")
    assert remote_remove(config, "a") == ["repo"]
    assert remote_list(config) == []
    with pytest.raises(NotFoundError):
        remote_remove(config, "a")


def test_remove_clears_the_default_it_names(config: Config) -> None:
    remote_add(config, "origin", "/srv/store", default=True)
    remote_remove(config, "origin")
    assert config.get("core.remote") is None


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served read-only over HTTP (by a server that ignores Range)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    root = tmp_path / "served"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/store"
    finally:
        server.shutdown()
        server.server_close()


def test_http_remotes_serve_fetches(http_root: tuple[Path, str], odb: ObjectDB,
                                    other_odb: ObjectDB,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root, url = http_root
    writer = connect("origin", str(root / "store"))
    monkeypatch.setattr(odb_module, "CHUNK", 4096)
    blobs = [b"", b"small", os.urandom(4096), os.urandom(3 * 4096 + 5)]
    oids = [odb.add_bytes(data) for data in blobs]
    for oid in oids:
        copy_object(odb, writer, oid)
    web = connect("web", url)
    assert web.exists_many([*oids, hash_bytes(b"absent")], jobs=4) == set(oids)
    for oid, data in zip(oids, blobs, strict=True):
        assert copy_object(web, other_odb, oid) == len(data)
        assert other_odb.read_bytes(oid) == data
    with pytest.raises(ObjectNotFound):
        copy_object(web, other_odb, hash_bytes(b"absent"))
