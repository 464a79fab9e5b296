"""Artifacts stream through `cairn server` in both directions: MLflow's multipart upload
protocol (mpu/create, the parts, complete, abort) over raw HTTP with its refusals, and
2 GiB uploads — a plain PUT, and multipart through the real mlflow client — and their
downloads with the server's peak resident memory (VmHWM) under 512 MiB."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server_process import LiveServer, running

MiB = 1 << 20
GiB = 1 << 30
RSS_CAP_KIB = 512 * 1024
MPU = "/api/2.0/mlflow-artifacts/mpu"


def blake3_of(data: bytes) -> str:
    from cairn.objects.hashing import hash_bytes

    return hash_bytes(data)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with running(f"sqlite:///{tmp_path / 'team.db'}", tmp_path) as live:
        yield live


def new_run(server: LiveServer, experiment: str) -> dict[str, Any]:
    api = f"{server.url}/api/2.0/mlflow"
    created = httpx.post(f"{api}/experiments/create", json={"name": experiment}).json()
    run = httpx.post(f"{api}/runs/create", json=created).json()["run"]["info"]
    info: dict[str, Any] = run
    return info


def run_dir(info: dict[str, Any]) -> str:
    """The run's artifact root as the artifact routes name it: <experiment>/<run>/artifacts."""
    return str(info["artifact_uri"]).removeprefix("mlflow-artifacts:/")


def uploads_in_progress(server: LiveServer) -> list[Path]:
    return [p for d in server.artifacts.rglob("uploads") for p in d.iterdir()]


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error_code"], body["message"]


def test_a_multipart_upload_is_assembled_verified_and_recorded(server: LiveServer) -> None:
    info = new_run(server, "mpu")
    root = run_dir(info)
    parts = [b"a" * 700_000, bytes(range(256)) * 3000, b"tail"]
    created = httpx.post(f"{server.url}{MPU}/create/{root}/model",
                         json={"path": "/home/me/weights.bin", "num_parts": 3})
    assert created.status_code == 200, created.text
    upload_id = created.json()["upload_id"]
    credentials = created.json()["credentials"]
    assert [c["part_number"] for c in credentials] == [1, 2, 3]
    assert credentials[0]["url"] == f"{server.url}{MPU}/upload/{upload_id}/1"

    etags = {}
    for k in (3, 1, 2):  # parts arrive in any order, as the client's threads send them
        sent = httpx.put(credentials[k - 1]["url"], content=parts[k - 1])
        assert sent.status_code == 200, sent.text
        etags[k] = sent.headers["ETag"]
        assert etags[k] == f'"{blake3_of(parts[k - 1])}"'
    again = httpx.put(credentials[1]["url"], content=parts[1])  # a retried part is fine
    assert again.status_code == 200 and again.headers["ETag"] == etags[2]

    listed = [{"part_number": k, "etag": etags[k]} for k in (1, 2, 3)]
    done = httpx.post(f"{server.url}{MPU}/complete/{root}/model",
                      json={"path": "/home/me/weights.bin", "upload_id": upload_id,
                            "parts": listed})
    assert done.status_code == 200, done.text
    whole = b"".join(parts)
    got = httpx.get(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{root}/model/weights.bin")
    assert got.content == whole
    import cairn

    recorded = {a.path: a for a in cairn.Client(server.backend_store_uri).store
                .list_artifacts(info["run_id"])}
    assert recorded["model/weights.bin"].digest == blake3_of(whole)
    assert recorded["model/weights.bin"].size == len(whole)
    assert recorded["model"].is_dir  # the directory's manifest, as after a PUT
    assert uploads_in_progress(server) == []  # the parts are gone
    twice = httpx.post(f"{server.url}{MPU}/complete/{root}/model",
                       json={"path": "weights.bin", "upload_id": upload_id, "parts": listed})
    assert error(twice)[:2] == (404, "RESOURCE_DOES_NOT_EXIST")


def test_multipart_refusals_are_4xx_and_abort_removes_the_parts(server: LiveServer) -> None:
    info = new_run(server, "mpu-refusals")
    root = run_dir(info)
    url = f"{server.url}{MPU}"

    def create(path: str = f"{root}/model", local: str = "w.bin", parts: Any = 2
               ) -> httpx.Response:
        return httpx.post(f"{url}/create/{path}", json={"path": local, "num_parts": parts})

    upload_id = create().json()["upload_id"]
    for bad in ("0", "3", "-1", "x"):
        status, code, message = error(httpx.put(f"{url}/upload/{upload_id}/{bad}",
                                                content=b"p"))
        assert (status, code) == (400, "INVALID_PARAMETER_VALUE"), bad
        assert "1..2" in message
    for unknown in ("0" * 32, "not-an-upload"):
        status, code, _ = error(httpx.put(f"{url}/upload/{unknown}/1", content=b"p"))
        assert (status, code) == (404, "RESOURCE_DOES_NOT_EXIST")
        for step in ("complete", "abort"):
            answer = httpx.post(f"{url}/{step}/{root}/model",
                                json={"path": "w.bin", "upload_id": unknown, "parts": []})
            assert error(answer)[:2] == (404, "RESOURCE_DOES_NOT_EXIST"), (step, unknown)
    for bad_parts in (0, 10_001, "many"):
        assert create(parts=bad_parts).status_code == 400
    for bad_path in ("../../outside", f"{root}/../../x", f"{root}/%252e%252e/x", "0"):
        assert 400 <= create(path=bad_path).status_code < 500, bad_path
    for bad_local in ("..", "/tmp/..", "C:\\Users\\me\\..", "a%2e%2e", "dir/"):
        assert create(local=bad_local).status_code == 400, bad_local
    assert create(local="C:\\Users\\me\\w.bin").status_code == 200  # a Windows client

    first = httpx.put(f"{url}/upload/{upload_id}/1", content=b"one")
    lacking = httpx.post(f"{url}/complete/{root}/model", json={
        "path": "w.bin", "upload_id": upload_id,
        "parts": [{"part_number": 1, "etag": first.headers["ETag"]}]})
    assert error(lacking)[0] == 400 and "lacks 2" in error(lacking)[2]
    unsent = httpx.post(f"{url}/complete/{root}/model", json={
        "path": "w.bin", "upload_id": upload_id,
        "parts": [{"part_number": 1, "etag": first.headers["ETag"]},
                  {"part_number": 2, "etag": "x"}]})
    assert error(unsent)[0] == 400 and "never uploaded" in error(unsent)[2]
    elsewhere = httpx.post(f"{url}/complete/{root}/other", json={
        "path": "w.bin", "upload_id": upload_id, "parts": []})
    assert error(elsewhere)[0] == 400 and "'model/w.bin'" in error(elsewhere)[2]

    in_progress = uploads_in_progress(server)
    assert any(p.name == upload_id for p in in_progress)
    aborted = httpx.post(f"{url}/abort/{root}/model", json={"path": "w.bin",
                                                            "upload_id": upload_id})
    assert aborted.status_code == 200, aborted.text
    assert upload_id not in [p.name for p in uploads_in_progress(server)]
    late = httpx.put(f"{url}/upload/{upload_id}/2", content=b"two")
    assert error(late)[:2] == (404, "RESOURCE_DOES_NOT_EXIST")

    # A part replaced after its ETag was answered no longer matches: the upload is refused.
    other = create().json()["upload_id"]
    tags = [httpx.put(f"{url}/upload/{other}/{k}", content=b"v1").headers["ETag"]
            for k in (1, 2)]
    httpx.put(f"{url}/upload/{other}/2", content=b"v2")
    stale = httpx.post(f"{url}/complete/{root}/model", json={
        "path": "w.bin", "upload_id": other,
        "parts": [{"part_number": k, "etag": tags[k - 1]} for k in (1, 2)]})
    assert error(stale)[0] == 400 and "does not match its ETag" in error(stale)[2]
    got = httpx.get(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{root}/model/w.bin")
    assert got.status_code == 404  # nothing was recorded by any of the refusals


# -- 2 GiB through a server whose peak memory is measured ------------------------------------

def peak_rss_kib(pid: int) -> int:
    """The largest peak resident set (VmHWM) of the process and its descendants."""
    peak = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except FileNotFoundError:
            continue
        peak = max([peak] + [int(line.split()[1]) for line in status.splitlines()
                             if line.startswith("VmHWM:")])
        for task in tasks:
            pending += [int(c) for c in (task / "children").read_text().split()]
    return peak


def body(total: int, seed: int, hasher: Any) -> Iterator[bytes]:
    """`total` bytes, made a MiB at a time (never held whole), each MiB distinct."""
    block = random.Random(seed).randbytes(MiB)
    for i in range(total // MiB):
        chunk = i.to_bytes(8, "little") + block[8:]
        hasher.update(chunk)
        yield chunk


def assert_small(server: LiveServer) -> None:
    peak = peak_rss_kib(server.process.pid)
    assert 0 < peak < RSS_CAP_KIB, f"the server's peak RSS was {peak / 1024:.0f} MiB"


def downloaded_digest(url: str) -> tuple[str, int]:
    import blake3

    hasher = blake3.blake3()
    size = 0
    with httpx.stream("GET", url, timeout=120) as got:
        assert got.status_code == 200
        for chunk in got.iter_bytes(MiB):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


@pytest.mark.slow
@pytest.mark.timeout(900)  # minutes of disk and CPU on a loaded machine
def test_a_2_gib_put_and_its_download_stream_within_512_mib(server: LiveServer) -> None:
    import blake3

    info = new_run(server, "big-put")
    url = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{run_dir(info)}/model/big.bin"
    sent = blake3.blake3()
    put = httpx.put(url, content=body(2 * GiB, 1, sent), timeout=300)
    assert put.status_code == 200, put.text
    assert downloaded_digest(url) == (sent.hexdigest(), 2 * GiB)
    import cairn

    recorded = {a.path: a for a in cairn.Client(server.backend_store_uri).store
                .list_artifacts(info["run_id"])}
    assert recorded["model/big.bin"].digest == sent.hexdigest()
    assert_small(server)


MULTIPART_CLIENT = """
import json, mlflow, sys
mlflow.set_experiment("big")
with mlflow.start_run() as run:
    mlflow.log_artifact(sys.argv[1], artifact_path="weights")
got = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                          artifact_path="weights/big.bin", dst_path="down")
print(json.dumps({"run_id": run.info.run_id, "downloaded": got}))
"""


@pytest.mark.slow
@pytest.mark.compat
@pytest.mark.timeout(900)
def test_a_2_gib_multipart_upload_by_the_mlflow_client_streams_within_512_mib(
        server: LiveServer, tmp_path: Path) -> None:
    import blake3

    from tests.compat.mlflow_client import python_or_skip, run_client

    python = python_or_skip(3)
    source = tmp_path / "big.bin"
    sent = blake3.blake3()
    with open(source, "wb") as f:
        for chunk in body(2 * GiB, 2, sent):
            f.write(chunk)
    script = MULTIPART_CLIENT.replace("sys.argv[1]", repr(str(source)))
    out = run_client(python, server.url, tmp_path / "client", script, server.output(),
                     {"MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true",
                      "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(64 * MiB)})
    log = server.output()
    assert "/mpu/complete/" in log and "PUT /api/2.0/mlflow-artifacts/artifacts" not in log
    import cairn

    recorded = {a.path: a for a in cairn.Client(server.backend_store_uri).store
                .list_artifacts(out["run_id"])}
    assert recorded["weights/big.bin"].digest == sent.hexdigest()
    got = blake3.blake3(max_threads=blake3.blake3.AUTO)
    with open(out["downloaded"], "rb") as f:
        while chunk := f.read(16 * MiB):
            got.update(chunk)
    assert got.hexdigest() == sent.hexdigest()
    assert_small(server)
