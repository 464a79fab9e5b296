"""Timing and peak memory of one child process, and summaries of repeated samples."""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SPAWN = Path(__file__).with_name("spawn.py")


@dataclass(frozen=True)
class Sample:
    seconds: float
    peak_mib: float  # ru_maxrss of the command (and its reaped children), from wait4
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
    """Run ``cmd`` once through the launcher; wall time from fork to reap, peak RSS by wait4."""
    result_file = log_path.with_name(log_path.name + ".result")
    result_file.unlink(missing_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(SPAWN), str(result_file), *cmd],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a timeout can kill it all
        )
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return Sample(timeout, 0.0, -signal.SIGKILL, timed_out=True)
    seconds, maxrss_kib, code = result_file.read_text().split()
    return Sample(seconds=float(seconds), peak_mib=int(maxrss_kib) / 1024, returncode=int(code))


def tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
