"""push / fetch / pull / status --cloud / remote through the CLI, in real git repositories,
against a local-directory remote and (marked s3) the moto S3 server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cairn.objects.hashing import hash_bytes, hash_file
from tests.conftest import CliRepo, clone, commit, git
from tests.s3_server import (  # noqa: F401 - fixtures, used by name
    S3Bucket,
    free_port,
    s3_auth_enforced,
    s3_bucket,
    s3_server,
)

Attach = Callable[[CliRepo], None]


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def attach_remote(request: pytest.FixtureRequest, tmp_path: Path) -> Attach:
    """Adds a default remote `origin` to a repository: a directory, or an S3 bucket."""
    if request.param == "local":
        url, options = str(tmp_path / "store"), {}
    else:
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        url, options = bucket.url(), {"endpoint_url": bucket.endpoint}

    def attach(repo: CliRepo) -> None:
        repo.cairn("remote", "add", "-d", "origin", url)
        for option, value in options.items():
            repo.cairn("remote", "modify", "origin", option, value)

    return attach


def dataset(count: int = 1000) -> dict[str, bytes]:
    """A directory of `count` small files spread over ten subdirectories."""
    return {f"data/part{i % 10}/row{i:04d}.txt": f"row {i}\n".encode() for i in range(count)}


def write_all(repo: CliRepo, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        repo.write(rel, data)


def replace(repo: CliRepo, rel: str, data: bytes) -> None:
    (repo.root / rel).unlink()  # the workspace copy may be a read-only link
    repo.write(rel, data)


def assert_files(repo: CliRepo, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        assert (repo.root / rel).read_bytes() == data, rel


def stderr_line(result: object) -> str:
    """The error output, which must be exactly one line."""
    text = getattr(result, "stderr", "")
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# -- round trips -------------------------------------------------------------------------


def test_round_trip_through_git_clone(repo: CliRepo, attach_remote: Attach, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    attach_remote(repo)
    v1, v2 = os.urandom(200_000), os.urandom(150_000)
    files = dataset()
    repo.write("model.bin", v1)
    write_all(repo, files)
    repo.cairn("add", "model.bin", "data")
    commit(repo, "v1", tag="v1")
    # 1000 files + 11 manifests + the model
    assert repo.cairn("push").output.strip() == "1012 files pushed"
    assert repo.cairn("push").output.strip() == "Everything is up to date."
    replace(repo, "model.bin", v2)
    repo.cairn("add", "model.bin")
    commit(repo, "v2", tag="v2")
    assert repo.cairn("push").output.strip() == "1 file pushed"

    other = clone(repo, tmp_path / "clone", monkeypatch)
    pulled = other.cairn("pull").output
    assert "1012 files fetched" in pulled
    assert_files(other, {"model.bin": v2, **files})
    assert other.cairn("status").output.strip() == "Data and pipelines are up to date."

    other.git("checkout", "-q", "v1")  # the clone has no hooks: pull by hand
    assert "1 file fetched" in other.cairn("pull").output
    assert_files(other, {"model.bin": v1})


def test_git_checkout_of_an_old_tag_restores_old_bytes(repo: CliRepo, attach_remote: Attach,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    attach_remote(repo)
    repo.write("model.bin", b"weights v1")
    repo.cairn("add", "model.bin")
    commit(repo, "v1", tag="model-v1")
    replace(repo, "model.bin", b"weights v2")
    repo.cairn("add", "model.bin")
    commit(repo, "v2")
    repo.cairn("push")  # the workspace: v2 only
    repo.git("checkout", "-q", "model-v1")  # the post-checkout hook runs `cairn checkout`
    assert (repo.root / "model.bin").read_bytes() == b"weights v1"
    repo.git("checkout", "-q", "main")
    repo.cairn("checkout")
    assert (repo.root / "model.bin").read_bytes() == b"weights v2"

    other = clone(repo, tmp_path / "clone", monkeypatch)
    other.git("checkout", "-q", "model-v1")
    result = other.cairn("pull", ok=False)  # v1 was never pushed
    assert result.exit_code != 0 and "not in remote 'origin'" in stderr_line(result)
    monkeypatch.chdir(repo.root)
    assert repo.cairn("push", "--all-tags").output.strip() == "1 file pushed"
    monkeypatch.chdir(other.root)
    other.cairn("pull")
    assert (other.root / "model.bin").read_bytes() == b"weights v1"


def test_fetch_and_pull_take_targets_and_revisions(repo: CliRepo, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    repo.cairn("remote", "add", "-d", "origin", str(tmp_path / "store"))
    repo.write("a.bin", b"a1")
    repo.write("b.bin", b"b1")
    repo.cairn("add", "a.bin", "b.bin")
    commit(repo, "one", tag="one")
    replace(repo, "a.bin", b"a2")
    repo.cairn("add", "a.bin")
    commit(repo, "two")
    repo.cairn("push", "--rev", "one")  # the workspace and tag `one`
    other = clone(repo, tmp_path / "clone", monkeypatch)
    assert other.cairn("pull", "b.bin").output.splitlines() == ["M\tb.bin",
                                                                "1 file fetched and 1 path updated"]
    assert not (other.root / "a.bin").exists()
    other.cairn("fetch", "--rev", "one", "a.bin")
    assert (other.root / ".cairn" / "cache" / "objects" / hash_bytes(b"a1")[:2]).is_dir()
    other.cairn("pull")
    assert (other.root / "a.bin").read_bytes() == b"a2"


def test_pre_push_hook_pushes_data_with_git(repo: CliRepo, tmp_path: Path) -> None:
    store = tmp_path / "store"
    git(tmp_path, "init", "-q", "--bare", "origin.git")
    repo.git("remote", "add", "origin", str(tmp_path / "origin.git"))
    repo.write("model.bin", b"pushed by the hook")
    repo.cairn("add", "model.bin")
    commit(repo, "v1")
    repo.git("push", "-q", "origin", "main")  # no default remote: a note, no failure
    repo.cairn("remote", "add", "-d", "storage", str(store))
    commit(repo, "remote")
    repo.git("push", "-q", "origin", "main")
    oid = hash_bytes(b"pushed by the hook")
    assert (store / "objects" / oid[:2] / oid[2:]).read_bytes() == b"pushed by the hook"


# -- status --cloud ----------------------------------------------------------------------


def test_status_cloud_shows_what_the_remote_lacks(repo: CliRepo, attach_remote: Attach) -> None:
    attach_remote(repo)
    write_all(repo, dataset(40))
    repo.write("model.bin", b"weights")
    repo.cairn("add", "data", "model.bin")
    report = json.loads(repo.cairn("status", "--cloud", "--json").output)
    assert report["data"]["state"] == "new" and report["data"]["not_on_remote"] == 51
    assert report["model.bin"]["bytes_not_on_remote"] == 7
    text = repo.cairn("status", "-c").output
    assert "new:" in text and "51 objects to push" in text
    repo.cairn("push", "model.bin")
    report = json.loads(repo.cairn("status", "--cloud", "--json").output)
    assert report["model.bin"]["state"] == "in sync" and report["data"]["state"] == "new"
    repo.cairn("push")
    assert repo.cairn("status", "--cloud").output.strip() == \
        "Cache and remote 'origin' are in sync."


# -- integrity -----------------------------------------------------------------------------


def corrupt_on_remote(kind: str, store: Path | S3Bucket, oid: str, data: bytes) -> None:
    if isinstance(store, Path):
        path = store / "objects" / oid[:2] / oid[2:]
        path.chmod(0o644)
        path.write_bytes(data)
    else:
        store.client().put_object(Bucket=store.name, Key=f"store/objects/{oid[:2]}/{oid[2:]}",  # type: ignore[attr-defined]
                                  Body=data)


@pytest.mark.parametrize("kind", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_a_corrupt_remote_object_is_refused_on_pull(repo: CliRepo, kind: str, tmp_path: Path,
                                                    request: pytest.FixtureRequest,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    store: Path | S3Bucket
    if kind == "local":
        store = tmp_path / "store"
        repo.cairn("remote", "add", "-d", "origin", str(store))
    else:
        store = request.getfixturevalue("s3_bucket")
        repo.cairn("remote", "add", "-d", "origin", store.url())
        repo.cairn("remote", "modify", "origin", "endpoint_url", store.endpoint)
    data = b"precious weights" * 1000
    repo.write("model.bin", data)
    repo.cairn("add", "model.bin")
    commit(repo, "v1")
    repo.cairn("push")
    oid = hash_bytes(data)
    corrupt_on_remote(kind, store, oid, b"X" * len(data))
    other = clone(repo, tmp_path / "clone", monkeypatch)
    result = other.cairn("pull", ok=False)
    assert result.exit_code != 0
    line = stderr_line(result)
    assert f"object {oid} is corrupt" in line and "nothing was installed" in line
    assert not (other.root / ".cairn" / "cache" / "objects" / oid[:2] / oid[2:]).exists()
    assert not (other.root / "model.bin").exists()


# The real CLI, with each object's bytes written in two halves a pause apart, so that a
# kill lands mid-object and the test does not depend on how fast the disk is.
SLOW_PUSH = """
import sys, time
import cairn.objects.odb as odb
from cairn.cli.main import main
write_all = odb.write_all

def halting(fd, data):
    half = len(data) // 2
    write_all(fd, data[:half])
    time.sleep(0.02)
    write_all(fd, data[half:])

odb.write_all = halting
odb.BATCH_OBJECTS = 2  # objects reach their final names two at a time
sys.argv = ["cairn", "push", "-j", "1"]
main()
"""


def test_an_interrupted_push_leaves_no_partial_object_and_resumes(repo: CliRepo,
                                                                  tmp_path: Path) -> None:
    store = tmp_path / "store"
    repo.cairn("remote", "add", "-d", "origin", str(store))
    write_all(repo, {f"blobs/b{i:03d}.bin": os.urandom(64 << 10) for i in range(100)})
    repo.cairn("add", "blobs")
    total = 101  # and the manifest
    child = subprocess.Popen([sys.executable, "-c", SLOW_PUSH], cwd=repo.root,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while len(stored_objects(store)) < 5 and time.monotonic() < deadline:
            time.sleep(0.002)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    before = stored_objects(store)
    assert 5 <= len(before) < total
    for path in before:  # whatever has its final name is whole
        assert hash_file(path) == path.parent.name + path.name
    result = repo.cairn("push")
    assert result.output.strip() == f"{total - len(before)} files pushed"
    after = stored_objects(store)
    assert len(after) == total
    assert all(hash_file(p) == p.parent.name + p.name for p in after)


def stored_objects(store: Path) -> list[Path]:
    objects = store / "objects"
    if not objects.is_dir():
        return []
    return [p for p in objects.glob("*/*") if len(p.parent.name + p.name) == 64]


# -- bad input: one line, non-zero exit ------------------------------------------------


def test_unknown_or_missing_remote(repo: CliRepo) -> None:
    repo.write("a.bin", b"a")
    repo.cairn("add", "a.bin")
    result = repo.cairn("push", ok=False)
    assert result.exit_code != 0
    assert "no remote given and no default remote" in stderr_line(result)
    assert "cairn remote add -d" in stderr_line(result)
    result = repo.cairn("pull", "-r", "nope", ok=False)
    assert result.exit_code != 0
    assert "unknown remote 'nope'" in stderr_line(result)
    assert "cairn remote list" in stderr_line(result)


def test_remote_commands(repo: CliRepo, tmp_path: Path) -> None:
    repo.cairn("remote", "add", "backup", str(tmp_path / "backup"))
    assert "Setting 'origin' as a default remote." in repo.cairn(
        "remote", "add", "-d", "origin", "s3://bucket/path").output
    result = repo.cairn("remote", "add", "origin", "s3://other/path", ok=False)
    assert result.exit_code == 2 and "already exists" in stderr_line(result)
    repo.cairn("remote", "modify", "--local", "origin", "profile", "dev")
    assert "profile" in (repo.root / ".cairn" / "config.local.toml").read_text()
    assert repo.cairn("remote", "list").output.splitlines() == [
        f"backup\t{tmp_path / 'backup'}", "origin\ts3://bucket/path\t(default)"]
    assert repo.cairn("remote", "default").output.strip() == "origin"
    repo.cairn("remote", "default", "backup")
    repo.cairn("remote", "remove", "backup")
    result = repo.cairn("remote", "default", ok=False)
    assert result.exit_code != 0 and "no default remote" in stderr_line(result)
    result = repo.cairn("remote", "modify", "gone", "url", "/x", ok=False)
    assert "unknown remote 'gone'" in stderr_line(result)


def test_an_empty_or_in_repository_remote_url_is_refused(repo: CliRepo) -> None:
    config = (repo.root / ".cairn" / "config.toml").read_text()
    for args in (["add", "origin", ""], ["add", "-d", "origin", "  "], ["add", "origin", "."],
                 ["add", "origin", ".cairn/remote"], ["add", "origin", ".git"]):
        result = repo.cairn("remote", *args, ok=False)
        assert result.exit_code == 2, args
        assert stderr_line(result).startswith("error: ")
    assert (repo.root / ".cairn" / "config.toml").read_text() == config
    repo.cairn("remote", "add", "-d", "origin", "../store")
    result = repo.cairn("remote", "modify", "origin", "url", "", ok=False)
    assert result.exit_code == 2 and "the remote URL is empty" in stderr_line(result)
    repo.write("a.bin", b"a")
    repo.cairn("add", "a.bin")
    repo.cairn("push")
    assert not (repo.root / "objects").exists()


def test_a_remote_already_stored_as_the_repository_root_is_refused_by_push(
        repo: CliRepo) -> None:
    repo.cairn("config", "remote.origin.url", "..")  # as `remote add origin ''` stored it
    repo.cairn("config", "core.remote", "origin")
    repo.write("a.bin", b"a")
    repo.cairn("add", "a.bin")
    result = repo.cairn("push", ok=False)
    line = stderr_line(result)
    assert result.exit_code == 2 and "repository root itself" in line
    assert "cairn remote modify origin url PATH" in line
    assert not (repo.root / "objects").exists()


def test_push_to_an_http_remote_is_refused(repo: CliRepo) -> None:
    repo.cairn("remote", "add", "-d", "web", "https://example.invalid/store")
    repo.write("a.bin", b"a")
    repo.cairn("add", "a.bin")
    result = repo.cairn("push", ok=False)
    assert result.exit_code != 0 and "read-only over HTTP" in stderr_line(result)


def test_an_unreachable_s3_endpoint_fails_fast(repo: CliRepo,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    repo.cairn("remote", "add", "-d", "origin", "s3://bucket/store")
    repo.cairn("remote", "modify", "origin", "endpoint_url", f"http://127.0.0.1:{free_port()}")
    repo.write("a.bin", b"a")
    repo.cairn("add", "a.bin")
    started = time.monotonic()
    result = repo.cairn("push", ok=False)
    assert time.monotonic() - started < 10
    assert result.exit_code != 0
    line = stderr_line(result)
    assert "remote 'origin'" in line and "cannot reach http://127.0.0.1:" in line


@pytest.mark.s3
def test_a_missing_bucket_is_named(repo: CliRepo, request: pytest.FixtureRequest) -> None:
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    repo.cairn("remote", "add", "-d", "origin", f"s3://{bucket.name}-missing/store")
    repo.cairn("remote", "modify", "origin", "endpoint_url", bucket.endpoint)
    repo.write("a.bin", b"a")
    repo.cairn("add", "a.bin")
    result = repo.cairn("push", ok=False)
    assert result.exit_code != 0
    assert "the bucket (or container) does not exist" in stderr_line(result)


@pytest.mark.s3
def test_a_wrong_key_is_access_denied(repo: CliRepo, request: pytest.FixtureRequest) -> None:
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    request.getfixturevalue("s3_auth_enforced")  # after the bucket is made: now keys count
    repo.cairn("remote", "add", "-d", "origin", bucket.url())
    repo.cairn("remote", "modify", "origin", "endpoint_url", bucket.endpoint)
    repo.cairn("remote", "modify", "--local", "origin", "key", "WRONGKEY")
    repo.cairn("remote", "modify", "--local", "origin", "secret", "wrong")
    repo.write("a.bin", b"a")
    repo.cairn("add", "a.bin")
    shutil.rmtree(repo.root / ".cairn" / "cache")  # so that pull must ask the remote
    for command in ("push", "pull", "status --cloud"):
        result = repo.cairn(*command.split(), ok=False)
        assert result.exit_code != 0
        line = stderr_line(result)
        assert "remote 'origin'" in line and "access denied" in line, command


def test_hooks_carry_every_pushed_version_and_fetch_on_checkout(
        repo: CliRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git(tmp_path, "init", "-q", "--bare", "origin.git")
    repo.git("remote", "add", "origin", str(tmp_path / "origin.git"))
    repo.cairn("remote", "add", "-d", "storage", str(tmp_path / "store"))
    repo.write("model.bin", b"weights v1")
    repo.cairn("add", "model.bin")
    commit(repo, "v1", tag="model-v1")
    replace(repo, "model.bin", b"weights v2")
    repo.cairn("add", "model.bin")
    commit(repo, "v2", tag="model-v2")
    repo.git("push", "-q", "origin", "main", "--tags")  # pre-push: data of both tags
    for data in (b"weights v1", b"weights v2"):
        oid = hash_bytes(data)
        assert (tmp_path / "store" / "objects" / oid[:2] / oid[2:]).read_bytes() == data

    other = clone(repo, tmp_path / "clone", monkeypatch)
    other.cairn("install-hooks")
    other.cairn("pull")
    assert (other.root / "model.bin").read_bytes() == b"weights v2"
    # post-checkout: the cache lacks v1, so the hook fetches it from the default remote
    other.git("checkout", "-q", "model-v1")
    assert (other.root / "model.bin").read_bytes() == b"weights v1"


def test_a_no_op_push_trusts_what_this_clone_knows_and_status_cloud_corrects_it(
        repo: CliRepo, tmp_path: Path) -> None:
    store = tmp_path / "store"
    repo.cairn("remote", "add", "-d", "origin", str(store))
    repo.write("a.bin", b"a")
    repo.cairn("add", "a.bin")
    assert repo.cairn("push").output.strip() == "1 file pushed"
    store.rename(tmp_path / "wiped")  # someone else empties the remote
    # Nothing new to send, and this clone pushed it: the remote is not asked.
    assert repo.cairn("push").output.strip() == "Everything is up to date."
    assert "a.bin" in repo.cairn("status", "--cloud").output  # asks, and learns
    assert repo.cairn("push").output.strip() == "1 file pushed"
    store.rename(tmp_path / "wiped-again")
    repo.write("b.bin", b"b")
    repo.cairn("add", "b.bin")
    # Something new: the remote is asked about everything, so a.bin goes again too.
    assert repo.cairn("push").output.strip() == "2 files pushed"


def test_gc_cloud_makes_this_clone_forget_what_it_deleted(repo: CliRepo, tmp_path: Path) -> None:
    store = tmp_path / "store"
    repo.cairn("remote", "add", "-d", "origin", str(store))
    repo.write("a.bin", b"a")
    repo.cairn("add", "a.bin")
    repo.cairn("push")
    (repo.root / "a.bin.cairn").unlink()
    repo.cairn("gc", "--cloud", "--force")
    repo.cairn("add", "a.bin")
    assert repo.cairn("push").output.strip() == "1 file pushed"
    oid = hash_bytes(b"a")
    assert (store / "objects" / oid[:2] / oid[2:]).read_bytes() == b"a"


def test_pre_push_sends_the_data_of_every_commit_pushed(repo: CliRepo, tmp_path: Path) -> None:
    # Regression: only the branch tip's data was pushed, not the commits before it.
    git(tmp_path, "init", "-q", "--bare", "origin.git")
    repo.git("remote", "add", "origin", str(tmp_path / "origin.git"))
    repo.cairn("remote", "add", "-d", "storage", str(tmp_path / "store"))
    versions = [b"weights 1", b"weights 2", b"weights 3"]
    repo.write("model.bin", versions[0])
    repo.cairn("add", "model.bin")
    commit(repo, "v1")
    repo.git("push", "-q", "origin", "main")
    for data in versions[1:]:
        replace(repo, "model.bin", data)
        repo.cairn("add", "model.bin")
        commit(repo, data.decode())
    repo.git("push", "-q", "origin", "main")
    for data in versions:
        oid = hash_bytes(data)
        assert (tmp_path / "store" / "objects" / oid[:2] / oid[2:]).read_bytes() == data
