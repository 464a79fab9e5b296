"""`cairn gc --cloud` removes what killed pushes left on the remote once no push can
still own it (unwritten for a day), and never a younger temp file."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from cairn.lifecycle import gc as gc_module
from cairn.objects.hashing import hash_bytes
from tests.conftest import CliRepo
from tests.s3_server import S3Bucket, s3_bucket, s3_server  # noqa: F401 - fixtures

DAY = 24 * 3600
OID = hash_bytes(b"an object whose push was killed")


def pushed_remote(repo: CliRepo, tmp_path: Path) -> Path:
    storage = tmp_path / "storage"
    repo.cairn("remote", "add", "-d", "origin", str(storage))
    repo.write("model.pkl", b"weights")
    repo.cairn("add", "model.pkl")
    repo.cairn("push")
    return storage


def leave(storage: Path, rel: str, size: int, age: float) -> Path:
    """A temp file as a killed push leaves it, last written `age` seconds ago."""
    path = storage / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_gc_cloud_removes_only_temp_files_unwritten_for_a_day(repo: CliRepo,
                                                              tmp_path: Path) -> None:
    storage = pushed_remote(repo, tmp_path)
    beside = f"objects/{OID[:2]}/{OID[2:]}"
    stale = {f"{beside}.0123abcd0123.tmp": 1000, "tmp/5d41402abc4b2a76b9719d911017c592": 2000,
             f"runs/{OID[:2]}/{OID[2:]}.89ef01234567.tmp": 30}
    old = [leave(storage, rel, size, DAY + 3600) for rel, size in stale.items()]
    fresh = [leave(storage, f"{beside}.fedcba987654.tmp", 500, 60),
             leave(storage, "tmp/b1946ac92492d2347c6235b4d2611184", 500, DAY - 3600)]

    dry = repo.cairn("gc", "--cloud", "--dry-run").output
    for rel in stale:
        assert f"would remove {rel}" in dry
    assert "Would remove 3 temp file(s) of interrupted pushes (unwritten for over 24 hours) " \
           "from remote 'origin', freeing 3.0 KiB (3030 bytes)" in dry
    plan = json.loads(repo.cairn("gc", "--cloud", "--dry-run", "--json").output)
    assert plan["remote_temp_files"] == stale and plan["remote_temp_bytes"] == 3030
    assert plan["temp_age_seconds"] == DAY
    assert all(p.exists() for p in old + fresh)  # a dry run changes nothing

    out = repo.cairn("gc", "--cloud").output
    assert "Removed 3 temp file(s) of interrupted pushes" in out
    assert not any(p.exists() for p in old)
    assert all(p.exists() for p in fresh)  # a push may still be writing them
    assert [p.name for p in (storage / "objects").glob("*/*") if not p.name.endswith(".tmp")] \
        == [hash_bytes(b"weights")[2:]]
    assert "temp file" not in repo.cairn("gc", "--cloud").output  # the young ones wait


@pytest.mark.s3
def test_gc_cloud_aborts_an_s3_upload_untouched_for_a_day(
        repo: CliRepo, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    repo.cairn("remote", "add", "-d", "origin", bucket.url())
    repo.cairn("remote", "modify", "origin", "endpoint_url", bucket.endpoint)
    client: Any = bucket.client()
    key = f"store/objects/{OID[:2]}/{OID[2:]}"
    upload = client.create_multipart_upload(Bucket=bucket.name, Key=key)["UploadId"]
    client.upload_part(Bucket=bucket.name, Key=key, UploadId=upload, PartNumber=1,
                       Body=b"x" * 1000)
    elsewhere = client.create_multipart_upload(Bucket=bucket.name, Key="other/file")

    def uploads() -> list[str]:
        return [u["UploadId"] for u in
                client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", [])]

    report = json.loads(repo.cairn("gc", "--cloud", "--json").output)
    assert report["remote_temp_files"] == {}  # just written: a push may own it
    assert upload in uploads()

    now = time.time()
    monkeypatch.setattr(gc_module, "_now", lambda: now + DAY + 60)  # a day later
    dry = repo.cairn("gc", "--cloud", "--dry-run").output
    assert f"would remove objects/{OID[:2]}/{OID[2:]} (unfinished upload)" in dry
    assert upload in uploads()
    report = json.loads(repo.cairn("gc", "--cloud", "--json").output)
    assert report["remote_temp_files"] == {
        f"objects/{OID[:2]}/{OID[2:]} (unfinished upload)": 1000}
    assert uploads() == [elsewhere["UploadId"]]  # outside the remote's prefix: not ours
