"""A local S3-compatible server (moto) on 127.0.0.1, for the S3 workloads.

Talks to it over plain HTTP (moto does not check signatures), so the harness needs no boto3.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from peers import PROJECT_ROOT, S3Target

HOST = "127.0.0.1"
BUCKET = "bench"
_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class MotoServer:
    """``python -m moto.server`` from the project virtualenv, bound to the loopback only."""

    def __init__(self, log_path: Path, python: Path = PROJECT_ROOT / ".venv/bin/python") -> None:
        self.port = _free_port()
        self.endpoint = f"http://{HOST}:{self.port}"
        self.target = S3Target(self.endpoint)
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [str(python), "-m", "moto.server", "-H", HOST, "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()
        self.reset()

    def __enter__(self) -> MotoServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _request(self, method: str, path: str) -> bytes:
        req = urllib.request.Request(self.endpoint + path, method=method)
        with urllib.request.urlopen(req, timeout=60) as resp:
            body: bytes = resp.read()
            return body

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {self._proc.returncode}")
            try:
                self._request("GET", "/")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        raise RuntimeError(f"moto server not answering on {self.endpoint}")

    def reset(self) -> None:
        """Drop everything moto holds (it keeps objects in memory), then recreate the bucket."""
        self._request("POST", "/moto-api/reset")
        self._request("PUT", f"/{BUCKET}")

    def url(self, prefix: str) -> str:
        return f"s3://{BUCKET}/{prefix}"

    def count_objects(self, prefix: str) -> int:
        count, token = 0, ""
        while True:
            query = f"list-type=2&prefix={quote(prefix)}/"
            if token:
                query += f"&continuation-token={quote(token)}"
            root = ET.fromstring(self._request("GET", f"/{BUCKET}?{query}"))
            count += len(root.findall(f"{_S3_NS}Contents"))
            token = root.findtext(f"{_S3_NS}NextContinuationToken") or ""
            if not token:
                return count

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()
