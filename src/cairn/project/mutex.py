"""The repository lock: one mutating command at a time, readers never block.

``fcntl.flock`` on ``.cairn/tmp/lock``: the kernel drops it when the holder dies, so a
kill -9 never leaves a stale lock. The holder writes its PID and command into the file
so the next one can say who it is waiting for.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cairn.errors import LockError

DEFAULT_TIMEOUT = 10.0


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "unknown process"


@contextmanager
def repo_lock(path: Path, timeout: float = DEFAULT_TIMEOUT) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockError(
                        f"the repository is locked by {_holder(path)} ({path}); "
                        f"waited {timeout:g}s — retry when it finishes "
                        "(or raise core.lock_timeout)"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        command = " ".join(["cairn", *sys.argv[1:3]]) if sys.argv else "cairn"
        os.pwrite(fd, f"PID {os.getpid()} ({command})\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
