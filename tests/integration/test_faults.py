"""Crashes and concurrency: kill -9 mid-add, two writers at once, the lock's message."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cairn.objects.hashing import hash_file
from cairn.objects.odb import ObjectDB
from cairn.project import pointer
from cairn.project.mutex import repo_lock
from tests.conftest import CliRepo


def every_object_is_whole(repo: CliRepo) -> int:
    odb = ObjectDB.local(repo.root / ".cairn" / "cache")
    oids = list(odb.list_oids())
    for oid in oids:
        assert hash_file(odb.oid_to_path(oid)) == oid, f"object {oid} has wrong content"
    return len(oids)


def start(repo: CliRepo, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "cairn", *args], cwd=repo.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_when_objects_appear(repo: CliRepo, proc: subprocess.Popen[bytes], at_least: int) -> None:
    objects = repo.root / ".cairn" / "cache" / "objects"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if objects.exists() and sum(len(os.listdir(d)) for d in objects.iterdir()) >= at_least:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


def test_sigkill_in_the_middle_of_add_leaves_nothing_wrong(repo: CliRepo) -> None:
    for i in range(3000):
        repo.write(f"data/{i % 30}/f{i}.bin", os.urandom(2048))
    proc = start(repo, "add", "data")
    kill_when_objects_appear(repo, proc, 200)
    assert proc.returncode == -signal.SIGKILL
    assert not (repo.root / "data.cairn").exists()  # the pointer is written last
    every_object_is_whole(repo)
    repo.cairn("add", "data")
    assert every_object_is_whole(repo) == 3000 + 31  # files + manifests
    assert "up to date" in repo.cairn("status").output


def test_sigkill_while_copying_a_large_file(repo: CliRepo) -> None:
    repo.write("big.bin", os.urandom(256 << 20))
    proc = start(repo, "add", "big.bin")
    tmp = repo.root / ".cairn" / "cache" / "tmp"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if any(size > 0 for size in file_sizes(tmp)):
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    every_object_is_whole(repo)
    repo.cairn("add", "big.bin")
    assert every_object_is_whole(repo) == 1


def file_sizes(directory: Path) -> list[int]:
    """Sizes of the files in `directory`, which another process is renaming away."""
    sizes = []
    for f in directory.iterdir() if directory.exists() else []:
        with contextlib.suppress(FileNotFoundError):
            sizes.append(f.stat().st_size)
    return sizes


def test_two_adds_at_once_both_land_the_second_waiting_for_the_first(repo: CliRepo) -> None:
    """The repository lock makes a second writer wait (up to core.lock_timeout, 10 s),
    not fail: two adds started together both finish."""
    for name in ("a", "b"):
        for i in range(300):
            repo.write(f"{name}/f{i}.txt", f"{name}{i}" * 100)
    procs = [start(repo, "add", name) for name in ("a", "b")]
    for proc in procs:
        _, err = proc.communicate()
        assert proc.returncode == 0, err.decode()
    every_object_is_whole(repo)
    for name in ("a", "b"):
        assert pointer.load(repo.root / f"{name}.cairn").outs[0].nfiles == 300
    assert "up to date" in repo.cairn("status").output


def test_lock_names_its_holder(repo: CliRepo) -> None:
    repo.cairn("config", "core.lock_timeout", "0.2")
    repo.write("model.bin", "x")
    with repo_lock(repo.root / ".cairn" / "tmp" / "lock"):
        result = repo.cairn_process("add", "model.bin")
    assert result.returncode == 3
    assert f"locked by PID {os.getpid()}" in result.stderr
    assert "retry when it finishes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not Path(repo.root / "model.bin.cairn").exists()
    assert repo.cairn_process("add", "model.bin").returncode == 0
