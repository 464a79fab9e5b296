"""A local S3-compatible server (moto) for tests marked ``s3``.

Fixtures:
- ``s3_server`` (session): starts ``python -m moto.server`` on a free port of 127.0.0.1,
  waits until it answers, stops it at the end.
- ``s3_bucket`` (function): a fresh, empty bucket on that server, with AWS credentials
  "testing" in the environment (child processes inherit them).
- ``s3_auth_enforced`` (function): the server checks credentials while the test runs
  (moto's ``/moto-api/reset-auth``), so a wrong key is refused with 403 as on AWS.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

HOST = "127.0.0.1"
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT

    def post(self, path: str, body: bytes) -> None:
        request = urllib.request.Request(f"{self.endpoint}{path}", data=body, method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


@dataclass(frozen=True)
class S3Bucket:
    server: S3Server
    name: str
    key: str = "testing"
    secret: str = "testing"

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def url(self, path: str = "store") -> str:
        return f"s3://{self.name}/{path}"

    def client(self) -> object:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.key, aws_secret_access_key=self.secret)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _wait_until_up(endpoint: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1) as response:
                response.read()
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"moto server did not answer at {endpoint} within {START_TIMEOUT}s")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        server = S3Server(f"http://{HOST}:{port}")
        _wait_until_up(server.endpoint, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    bucket = S3Bucket(s3_server, f"cairn-{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", bucket.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", bucket.secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Nothing from the developer's ~/.aws, and no instance-metadata lookups.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    bucket.client().create_bucket(Bucket=bucket.name)  # type: ignore[attr-defined]
    return bucket


@pytest.fixture
def s3_auth_enforced(s3_server: S3Server) -> Iterator[S3Server]:
    s3_server.post("/moto-api/reset-auth", b"0")
    try:
        yield s3_server
    finally:
        s3_server.post("/moto-api/reset-auth", b"inf")
