"""A live `cairn server` for tests: a subprocess on 127.0.0.1 and a free port, waited
for until it answers /health, stopped (and reaped) by the fixture."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    backend_store_uri: str
    artifacts: Path
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running(backend_store_uri: str, workdir: Path, *extra: str,
            env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    """`cairn server` on a free port of 127.0.0.1 until the block ends."""
    port = free_port()
    artifacts = workdir / "server-artifacts"
    log = workdir / f"server-{port}.log"
    command = [sys.executable, "-m", "cairn", "server", "--backend-store-uri", backend_store_uri,
               "--artifacts-destination", str(artifacts), "--host", HOST, "--port", str(port),
               *extra]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
    server = LiveServer(f"http://{HOST}:{port}", backend_store_uri, artifacts, process, log)
    with until_stopped(process, server.url, "cairn server", server.output):
        yield server


@contextmanager
def until_stopped(process: subprocess.Popen[bytes], url: str, what: str,
                  output: Callable[[], str]) -> Iterator[None]:
    """Wait until `process` answers GET url/health; when the block ends, stop it
    (SIGTERM to its session, SIGKILL if it lingers) and reap it."""
    import httpx

    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited {process.returncode}:\n{output()}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer in {START_TIMEOUT_S:.0f} s:\n"
                                   f"{output()}")
            time.sleep(0.1)
        yield
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
