"""Errors of the machine — a file-size limit, a full disk, a read-only filesystem, no
permission — are one line naming the path and what to do, exit 1, and nothing is left
half-written: no pointer file, no temp file, no partial object or workspace file.

Each runs the real entry point in a child process, so a limit set there (setrlimit,
another user) cannot touch the test process. A full or read-only filesystem needs a
tmpfs mounted by the test (root); where that is not allowed those tests are skipped,
and the file-size limit still shows the rule.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.objects.hashing import hash_file
from cairn.objects.odb import ObjectDB
from tests.conftest import CliRepo
from tests.processes import obeying_permissions

MIB = 1 << 20


def run_limited(repo: CliRepo, *args: str, fsize: int | None = None,
                obey_permissions: bool = False) -> subprocess.CompletedProcess[str]:
    """`cairn ARGS` in a child process, under a file-size limit and/or (for root) without
    the capability to ignore file permissions."""
    code = ("import resource, sys\n"
            f"limit = {fsize!r}\n"
            "if limit is not None:\n"
            "    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
            f"sys.argv = ['cairn', *{list(args)!r}]\n"
            "from cairn.cli.main import main\nmain()\n")
    prefix = obeying_permissions() if obey_permissions else []
    return subprocess.run([*prefix, sys.executable, "-c", code], cwd=repo.root,
                          capture_output=True, text=True, check=False)


def assert_one_clear_line(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "internal error" not in proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def leftovers(root: Path) -> list[str]:
    """Temp files any Cairn write would leave behind if it stopped midway."""
    found = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            in_tmp = os.path.basename(dirpath) == "tmp" and len(name) == 32
            if name.endswith((".tmp", ".cairn-tmp")) or in_tmp:
                found.append(os.path.join(dirpath, name))
    return found


def every_object_is_whole(cache: Path) -> None:
    odb = ObjectDB.local(cache)
    for oid in odb.list_oids():
        assert hash_file(odb.oid_to_path(oid)) == oid


def test_add_under_a_file_size_limit(repo: CliRepo) -> None:
    repo.write("big.bin", os.urandom(3 * MIB))
    proc = run_limited(repo, "add", "big.bin", fsize=MIB)
    assert_one_clear_line(proc, "file too large", "big.bin", "ulimit")
    assert not (repo.root / "big.bin.cairn").exists()
    assert leftovers(repo.root) == []
    every_object_is_whole(repo.root / ".cairn" / "cache")
    repo.cairn("add", "big.bin")  # without the limit it goes through


def test_checkout_under_a_file_size_limit(repo: CliRepo) -> None:
    repo.cairn("config", "cache.type", "copy")
    repo.write("big.bin", os.urandom(3 * MIB))
    repo.cairn("add", "big.bin")
    (repo.root / "big.bin").unlink()
    proc = run_limited(repo, "checkout", fsize=MIB)
    assert_one_clear_line(proc, "file too large")
    assert not (repo.root / "big.bin").exists()  # no half-copied workspace file
    assert leftovers(repo.root) == []
    repo.cairn("checkout")
    assert hash_file(repo.root / "big.bin") == hash_file(
        next((repo.root / ".cairn" / "cache" / "objects").glob("*/*")))


def test_a_directory_without_write_permission(repo: CliRepo) -> None:
    repo.write("ro/model.bin", b"weights")
    os.chmod(repo.root / "ro", 0o555)
    try:
        proc = run_limited(repo, "add", "ro/model.bin", obey_permissions=True)
    finally:
        os.chmod(repo.root / "ro", 0o755)
    assert_one_clear_line(proc, "permission denied", "ro")
    assert not (repo.root / "ro" / "model.bin.cairn").exists()
    assert not (repo.root / "ro" / ".gitignore").exists()
    assert leftovers(repo.root) == []


@contextlib.contextmanager
def tmpfs(path: Path, size: int) -> Iterator[Path]:
    path.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {proc.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk(repo: CliRepo, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", MIB) as small:
        repo.cairn("config", "--local", "cache.dir", str(small))
        repo.write("big.bin", os.urandom(2 * MIB))
        repo.write("small.txt", "fits")
        proc = run_limited(repo, "add", "small.txt", "big.bin")
        assert_one_clear_line(proc, "no space left", "cairn gc")
        assert not (repo.root / "big.bin.cairn").exists()
        assert leftovers(small) == [] and leftovers(repo.root) == []
        every_object_is_whole(small)
        assert repo.cairn("status").exit_code == 0  # the repository still works


def test_a_read_only_filesystem(repo: CliRepo, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", 4 * MIB) as ro:
        repo.cairn("config", "--local", "cache.dir", str(ro))
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        repo.write("model.bin", b"weights")
        proc = run_limited(repo, "add", "model.bin")
        assert_one_clear_line(proc, "read-only filesystem")
        assert not (repo.root / "model.bin.cairn").exists()
        assert leftovers(repo.root) == []
