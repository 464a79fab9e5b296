"""Checkout never copies rotten cache bytes into the workspace.

A cache object can rot in place — a bad disk, a tool that ignores permissions — keeping
its inode, size and mtime, so the stat cache still vouches for it. Bytes copied out of
the cache are hashed as they are copied; linked objects rely on the stat cache, and
`cairn checkout --verify` re-hashes them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import CliRepo, commit

SIZES = {"small": 100, "large": 3 << 20}


def object_of(repo: CliRepo, pointer: str) -> Path:
    digest = next(line.split(": ")[1] for line in (repo.root / pointer).read_text().splitlines()
                  if "digest:" in line)
    return repo.root / ".cairn" / "cache" / "objects" / digest[:2] / digest[2:]


def rot_in_place(path: Path) -> None:
    """Flip one byte without changing the inode, the size or the mtime."""
    st = path.stat()
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 1]))
    os.chmod(path, st.st_mode)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_ino, path.stat().st_size, path.stat().st_mtime_ns) == \
        (st.st_ino, st.st_size, st.st_mtime_ns)


@pytest.mark.parametrize("size", SIZES)
def test_a_copy_of_a_rotten_object_is_refused(repo: CliRepo, tmp_path: Path, size: str) -> None:
    data = os.urandom(SIZES[size])
    repo.write("model.bin", data)
    repo.cairn("config", "cache.type", "copy")
    repo.cairn("remote", "add", "-d", "origin", str(tmp_path / "remote"))
    repo.cairn("add", "model.bin")
    repo.cairn("push")
    commit(repo, "model")
    (repo.root / "model.bin").unlink()
    obj = object_of(repo, "model.bin.cairn")
    old = time.time_ns() - 10 * 10**9  # not racily clean: the stat cache may vouch
    os.utime(obj, ns=(old, old))
    repo.cairn("checkout")  # hashes the object once: the stat cache vouches for it now
    rot_in_place(obj)
    (repo.root / "model.bin").unlink()

    result = repo.cairn("checkout", ok=False)
    assert result.exit_code == 1
    assert "corrupt" in result.stderr and "cairn pull" in result.stderr
    assert not (repo.root / "model.bin").exists()
    assert not obj.exists()  # quarantined, so nothing links it
    assert not list(repo.root.glob(".model.bin.*"))  # no temp file left beside it

    repo.cairn("pull")  # as the message says: a good copy comes back
    assert (repo.root / "model.bin").read_bytes() == data


def test_checkout_verify_rehashes_linked_objects(repo: CliRepo) -> None:
    repo.cairn("config", "cache.type", "hardlink")
    repo.write("model.bin", b"weights" * 100)
    repo.cairn("add", "model.bin")
    obj = object_of(repo, "model.bin.cairn")
    assert (repo.root / "model.bin").stat().st_ino == obj.stat().st_ino
    old = time.time_ns() - 10 * 10**9  # not racily clean: the stat cache may vouch
    os.utime(obj, ns=(old, old))
    repo.cairn("checkout")  # records the file in the stat cache
    rot_in_place(obj)

    assert repo.cairn("checkout").exit_code == 0  # a link: the stat cache vouches, as documented
    result = repo.cairn("checkout", "--verify", ok=False)
    assert result.exit_code == 1
    assert "corrupt" in result.stderr and "model.bin" in result.stderr
    assert not obj.exists()
