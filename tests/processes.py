"""Watching the processes a test started: bounded waits, pid files, liveness."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def wait_for(what: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def pid_in(path: Path) -> int | None:
    """The pid a command wrote to `path`, once it is all there."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return int(text) if text.endswith("\n") else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie nobody reaped yet (PID 1 of a container may not) has stopped too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return not Path("/proc/self").exists()


def obeying_permissions() -> list[str]:
    """A command prefix under which even root obeys file permissions: no capability to
    override them (for other users, who obey them anyway, none)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root ignores permissions, and setpriv (util-linux) is missing")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner",
            "--inh-caps", "-all"]
