"""`cairn get` and `cairn.api.open/read`: artifacts at any revision, from a cache or the
remote, from this repository, another local one or a clone — never touching a workspace."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import cairn
from cairn.errors import NotFoundError, ObjectNotFound, UserError
from cairn.objects.hashing import hash_bytes
from tests.conftest import CliRepo, commit


def track(repo: CliRepo, rel: str, data: bytes | str) -> None:
    path = repo.root / rel
    if path.exists():
        path.unlink()  # the workspace copy may be a read-only link
    repo.write(rel, data)
    repo.cairn("add", rel)


@pytest.fixture
def versions(repo: CliRepo, tmp_path: Path) -> CliRepo:
    """model.pkl and data/ tracked at v1, model.pkl changed at v2; a local remote has both."""
    repo.cairn("remote", "add", "-d", "origin", str(tmp_path / "remote"))
    track(repo, "model.pkl", b"weights v1")
    repo.write("data/train/a.csv", "a\n1\n")
    repo.write("data/b.csv", "b\n2\n")
    repo.cairn("add", "data")
    commit(repo, "one", "v1")
    track(repo, "model.pkl", b"weights v2")
    commit(repo, "two", "v2")
    repo.cairn("push", "--all-tags")
    return repo


def clear_cache(repo: CliRepo) -> None:
    shutil.rmtree(repo.root / ".cairn" / "cache")


def cache_objects(repo: CliRepo) -> list[str]:
    return [f for _, _, files in os.walk(repo.root / ".cairn" / "cache") for f in files]


def test_get_an_older_version_from_the_cache(versions: CliRepo) -> None:
    out = versions.cairn("get", ".", "model.pkl", "--rev", "v1", "-o", "old.pkl").stdout
    assert out == f"Wrote {versions.root / 'old.pkl'} (10 B)\n"
    assert (versions.root / "old.pkl").read_bytes() == b"weights v1"
    assert (versions.root / "model.pkl").read_bytes() == b"weights v2"  # workspace untouched


def test_api_open_and_read_at_a_tag(versions: CliRepo) -> None:
    with cairn.api.open("model.pkl", rev="v1") as f:
        assert f.read() == b"weights v1"
    assert cairn.api.read("model.pkl", rev="v2", mode="rb") == b"weights v2"
    assert cairn.api.read("data/train/a.csv", rev="v1") == "a\n1\n"
    with cairn.api.open("data/b.csv", rev="v1", mode="r") as text:
        assert text.readline() == "b\n"
    assert cairn.api.read("model.pkl") == "weights v2"  # no rev: the workspace's pointers
    assert versions.git("status", "--porcelain") == ""


def test_from_the_remote_when_the_cache_is_empty(versions: CliRepo) -> None:
    clear_cache(versions)
    assert cairn.api.read("model.pkl", rev="v1", mode="rb") == b"weights v1"
    versions.cairn("get", ".", "data", "--rev", "v1", "-o", "copy")
    assert (versions.root / "copy/train/a.csv").read_text() == "a\n1\n"
    assert (versions.root / "copy/b.csv").read_text() == "b\n2\n"
    assert cache_objects(versions) == []  # read through, nothing written to the cache


def test_from_another_local_repository(versions: CliRepo, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    versions.cairn("get", str(versions.root), "model.pkl", "--rev", "v1")
    assert (elsewhere / "model.pkl").read_bytes() == b"weights v1"
    assert cairn.api.read("model.pkl", repo=str(versions.root), rev="v2") == "weights v2"


def test_from_a_git_url_through_a_clone_and_the_remote(versions: CliRepo, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    clear_cache(versions)  # the clone has no cache: the remote configured at v1 serves it
    monkeypatch.chdir(tmp_path)
    url = f"file://{versions.root}"
    versions.cairn("get", url, "model.pkl", "--rev", "v1", "-o", "from-url.pkl")
    assert (tmp_path / "from-url.pkl").read_bytes() == b"weights v1"
    assert cairn.api.read("data/b.csv", repo=url) == "b\n2\n"  # HEAD of the clone


def test_a_file_git_holds_and_a_pipeline_output_in_cairn_lock(versions: CliRepo) -> None:
    data = b"metrics of the old model"
    oid = hash_bytes(data)
    versions.write("eval.json.tmp", data)
    (versions.root / ".cairn/cache/objects" / oid[:2]).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(versions.root / "eval.json.tmp", versions.root / ".cairn/cache/objects"
                    / oid[:2] / oid[2:])
    (versions.root / "eval.json.tmp").unlink()
    versions.write("sub/cairn.lock", "schema: cairn-lock/1\nstages:\n  evaluate:\n"
                   "    cmd: python evaluate.py\n    outs:\n    - path: ../reports/eval.json\n"
                   f"      digest: {oid}\n      size: {len(data)}\n")
    versions.write("params.yaml", "lr: 0.1\n")
    commit(versions, "three", "v3")
    versions.write("params.yaml", "lr: 0.2\n")
    assert cairn.api.read("reports/eval.json", rev="v3", mode="rb") == data
    assert cairn.api.read("params.yaml", rev="v3") == "lr: 0.1\n"


def test_out_is_not_overwritten_without_force(versions: CliRepo) -> None:
    versions.write("old.pkl", "mine")
    result = versions.cairn("get", ".", "model.pkl", "--rev", "v1", "-o", "old.pkl", ok=False)
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert (versions.root / "old.pkl").read_text() == "mine"
    versions.cairn("get", ".", "model.pkl", "--rev", "v1", "-o", "old.pkl", "--force")
    assert (versions.root / "old.pkl").read_bytes() == b"weights v1"
    versions.cairn("get", ".", "data", "--rev", "v1", "-o", "old.pkl", "--force")
    assert sorted(os.listdir(versions.root / "old.pkl")) == ["b.csv", "train"]


def test_a_path_not_tracked_at_the_revision(versions: CliRepo) -> None:
    result = versions.cairn("get", ".", "nope.bin", "--rev", "v1", ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: nope.bin is not tracked at v1: no nope.bin.cairn")
    assert result.stderr.count("\n") == 1
    with pytest.raises(NotFoundError, match="data/zzz.csv is not in its tracked directory"):
        cairn.api.read("data/zzz.csv", rev="v1")
    with pytest.raises(UserError, match="'v9' is not a git revision"):
        cairn.api.read("model.pkl", rev="v9")


def test_an_object_in_neither_cache_nor_remote(versions: CliRepo, tmp_path: Path) -> None:
    clear_cache(versions)
    shutil.rmtree(tmp_path / "remote")
    result = versions.cairn("get", ".", "model.pkl", "--rev", "v1", "-o", "old.pkl", ok=False)
    assert result.exit_code == 1
    assert "is not in the cache or remote 'origin' (model.pkl at v1)" in result.stderr
    assert sorted(os.listdir(versions.root)) == [".cairn", ".git", ".gitignore", "data",
                                                 "data.cairn", "model.pkl", "model.pkl.cairn"]


def test_without_a_remote_the_error_says_so(repo: CliRepo) -> None:
    track(repo, "model.pkl", b"w")
    commit(repo, "one", "v1")
    clear_cache(repo)
    with pytest.raises(ObjectNotFound, match="and no remote to ask"):
        cairn.api.read("model.pkl", rev="v1")


def test_a_corrupt_cache_copy_is_passed_over_for_the_remote(versions: CliRepo) -> None:
    oid = hash_bytes(b"weights v1")
    obj = versions.root / ".cairn/cache/objects" / oid[:2] / oid[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"weights v0")
    assert cairn.api.read("model.pkl", rev="v1", mode="rb") == b"weights v1"


def test_bad_arguments(versions: CliRepo) -> None:
    with pytest.raises(UserError, match="mode 'w' is not supported"):
        cairn.api.read("model.pkl", mode="w")
    with pytest.raises(UserError, match="is a directory"):
        cairn.api.read("data", rev="v1")
    with pytest.raises(UserError, match="must be a path inside the repository"):
        cairn.api.read("../x", rev="v1")
    result = versions.cairn("get", "/no/such/dir", "model.pkl", ok=False)
    assert result.exit_code == 2 and "no such repository directory" in result.stderr


def test_a_remote_moved_since_the_revision_is_read_where_it_is_now(versions: CliRepo,
                                                                   tmp_path: Path) -> None:
    # The config committed at v1 names the old place; the repository's config today wins.
    clear_cache(versions)
    shutil.move(tmp_path / "remote", tmp_path / "moved")
    versions.cairn("remote", "modify", "origin", "url", str(tmp_path / "moved"))
    assert cairn.api.read("model.pkl", rev="v1", mode="rb") == b"weights v1"


def test_a_remote_removed_since_the_revision_is_still_read_from_its_config(
        versions: CliRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_cache(versions)
    versions.cairn("remote", "remove", "origin")
    commit(versions, "no remote")
    assert cairn.api.read("model.pkl", rev="v1", mode="rb") == b"weights v1"
    monkeypatch.chdir(tmp_path)  # a clone: HEAD's config names none, v1's does
    versions.cairn("get", f"file://{versions.root}", "model.pkl", "--rev", "v1",
                   "-r", "origin", "-o", "v1.pkl")
    assert (tmp_path / "v1.pkl").read_bytes() == b"weights v1"


def test_out_in_a_new_directory_and_a_file_forced_over_a_directory(versions: CliRepo) -> None:
    versions.write("params.yaml", "lr: 0.1\n")
    commit(versions, "params", "v3")
    versions.cairn("get", ".", "params.yaml", "--rev", "v3", "-o", "new/sub/p.yaml")
    assert (versions.root / "new/sub/p.yaml").read_text() == "lr: 0.1\n"
    versions.cairn("get", ".", "model.pkl", "--rev", "v1", "-o", "new", "--force")
    assert (versions.root / "new").read_bytes() == b"weights v1"
    assert sorted(os.listdir(versions.root)) == sorted(
        [".cairn", ".git", ".gitignore", "data", "data.cairn", "model.pkl", "model.pkl.cairn",
         "new", "params.yaml"])  # nothing left beside it


def test_a_git_file_name_that_is_not_utf8_does_not_stop_get(repo: CliRepo) -> None:
    """git stores names as bytes; listing a revision that holds one was an internal
    error (UnicodeDecodeError) before."""
    (repo.root / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"latin-1 name")
    repo.write("notes.txt", b"kept by git")
    commit(repo, "v1")
    repo.cairn("get", ".", "notes.txt", "--rev", "HEAD", "-o", "out.txt")
    assert (repo.root / "out.txt").read_bytes() == b"kept by git"


def test_get_an_older_tag_from_a_remote_added_after_it(repo: CliRepo, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # The usual order: tag model-v1, later set up a remote and push every tag. The config
    # committed at model-v1 names no remote, yet the repository's remote has the bytes.
    repo.write("model.pkl", "weights v1")
    repo.cairn("add", "model.pkl")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "v1")
    repo.git("tag", "model-v1")
    repo.cairn("remote", "add", "-d", "store", str(tmp_path / "remote"))
    repo.git("add", "-A")
    repo.git("commit", "-qm", "a remote")
    repo.cairn("push", "--all-tags")
    clone = tmp_path / "clone"
    repo.git("clone", "-q", str(repo.root), str(clone))
    monkeypatch.chdir(tmp_path)  # outside any repository: no cache but the remote's
    for args in ((), ("-r", "store")):
        out = tmp_path / f"v1{len(args)}.pkl"
        repo.cairn("get", str(clone), "model.pkl", "--rev", "model-v1", "-o", str(out), *args)
        assert out.read_text() == "weights v1"
