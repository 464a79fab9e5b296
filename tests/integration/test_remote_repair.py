"""A corrupt object on a remote: the advice pull and fsck give repairs it, followed as
written, in real git clones with a local-directory remote (objects there are 0444)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from cairn.objects.hashing import hash_bytes, hash_file
from tests.conftest import CliRepo, clone, commit

MODEL = b"trained weights " * 64


def remote_object(storage: Path, data: bytes) -> Path:
    oid = hash_bytes(data)
    return storage / "objects" / oid[:2] / oid[2:]


def corrupt(path: Path) -> None:
    path.chmod(0o644)  # a disk fault or a stray tool does not care that it is read-only
    path.write_bytes(b"bit rot" + path.read_bytes()[7:])


def pushed_model(repo: CliRepo, tmp_path: Path) -> Path:
    """model.pkl added, committed and pushed to a default local remote; its directory."""
    storage = tmp_path / "storage"
    repo.cairn("remote", "add", "-d", "origin", str(storage))
    repo.write("model.pkl", MODEL)
    repo.cairn("add", "model.pkl")
    commit(repo, "model")
    assert repo.cairn("push").output.strip() == "1 file pushed"
    return storage


def error_line(result: object) -> str:
    lines = getattr(result, "stderr", "").strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def commands_in(line: str) -> list[list[str]]:
    """The `cairn …` commands an error line tells the user to run, in order."""
    return [shlex.split(cmd)[1:] for cmd in re.findall(r"`(cairn [^`]+)`", line)]


def test_the_pull_advice_followed_verbatim_repairs_the_remote(
        repo: CliRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = pushed_model(repo, tmp_path)
    corrupt(remote_object(storage, MODEL))
    other = clone(repo, tmp_path / "other", monkeypatch)
    refused = other.cairn("pull", ok=False)
    assert refused.exit_code == 1
    line = error_line(refused)
    assert "corrupt" in line and hash_bytes(MODEL) in line
    assert not (other.root / "model.pkl").exists()
    advice = commands_in(line)
    assert advice == [["fsck", "-r", "origin"], ["push", "-r", "origin"]]
    # This clone has no good copy to send: push says so and how to go on.
    pushed = other.cairn("push")
    assert "corrupt object on remote 'origin' that this cache lacks" in pushed.stderr

    monkeypatch.chdir(repo.root)  # the clone whose cache has a good copy
    for args in advice:
        repo.cairn(*args, ok=args[0] == "push")
    assert hash_file(remote_object(storage, MODEL)) == hash_bytes(MODEL)

    monkeypatch.chdir(other.root)
    assert "1 file fetched" in other.cairn("pull").output
    assert (other.root / "model.pkl").read_bytes() == MODEL


def test_deleting_the_bad_copy_then_pushing_after_fsck_restores_it(repo: CliRepo,
                                                                    tmp_path: Path) -> None:
    storage = pushed_model(repo, tmp_path)
    bad = remote_object(storage, MODEL)
    corrupt(bad)
    assert repo.cairn("fsck", "-r", "origin", ok=False).exit_code == 1
    bad.unlink()
    assert "1 file pushed" in repo.cairn("push").output
    assert hash_file(bad) == hash_bytes(MODEL)


def test_push_after_fsck_replaces_the_corrupt_copy_in_place(repo: CliRepo,
                                                            tmp_path: Path) -> None:
    storage = pushed_model(repo, tmp_path)
    bad = remote_object(storage, MODEL)
    corrupt(bad)
    # Without fsck this clone trusts what it pushed: the damage is not known yet.
    assert repo.cairn("push").output.strip() == "Everything is up to date."
    found = repo.cairn("fsck", "-r", "origin", ok=False)
    advice = commands_in(error_line(found))
    assert advice[0] == ["push", "-r", "origin"]
    out = repo.cairn(*advice[0]).output
    assert "Replaced 1 corrupt object on remote 'origin'" in out and "1 file pushed" in out
    assert hash_file(bad) == hash_bytes(MODEL)
    assert not os.stat(bad).st_mode & 0o222  # read-only again, like every object there
    assert repo.cairn("push").output.strip() == "Everything is up to date."
    assert "and 1 in remote 'origin': all good" in repo.cairn("fsck", "-r", "origin").output


def test_a_damaged_object_outside_the_workspace_is_replaced_too(repo: CliRepo,
                                                                tmp_path: Path) -> None:
    storage = pushed_model(repo, tmp_path)
    repo.write("model.pkl", b"weights v2")
    repo.cairn("add", "model.pkl")  # v1 is now only in git history and the cache
    repo.cairn("push")
    corrupt(remote_object(storage, MODEL))
    repo.cairn("fsck", "-r", "origin", ok=False)
    assert "Replaced 1 corrupt object" in repo.cairn("push").output
    assert hash_file(remote_object(storage, MODEL)) == hash_bytes(MODEL)
