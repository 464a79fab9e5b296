"""Timing and peak memory of one child process, and summaries of repeated samples."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    seconds: float
    peak_mib: float  # ru_maxrss of the child itself, as reported by wait4
    returncode: int
    timed_out: bool = False


@dataclass
class Summary:
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def median_s(self) -> float | None:
        return statistics.median(s.seconds for s in self.samples) if self.samples else None

    @property
    def peak_mib(self) -> float | None:
        return max(s.peak_mib for s in self.samples) if self.samples else None

    def to_json(self) -> dict[str, object]:
        return {
            "median_s": self.median_s,
            "peak_mib": self.peak_mib,
            "runs": [
                {"seconds": s.seconds, "peak_mib": s.peak_mib, "returncode": s.returncode}
                for s in self.samples
            ],
            "error": self.error,
            "warnings": self.warnings,
        }


def measure(
    cmd: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    timeout: float,
) -> Sample:
    """Run ``cmd`` once; wall time from spawn to reap, peak RSS from ``os.wait4``."""
    with open(log_path, "ab") as log:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        log.flush()
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        timed_out = threading.Event()
        timer = threading.Timer(timeout, _kill_group, (proc.pid, timed_out))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return Sample(
        seconds=elapsed,
        peak_mib=usage.ru_maxrss / 1024,  # KiB on Linux
        returncode=proc.returncode,
        timed_out=timed_out.is_set(),
    )


def _kill_group(pid: int, flag: threading.Event) -> None:
    flag.set()
    try:
        os.killpg(pid, signal.SIGKILL)  # the child's own session, started above
    except ProcessLookupError:
        pass


def tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
