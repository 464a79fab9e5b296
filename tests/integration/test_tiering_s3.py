"""Tiering against the S3 server (moto): `cairn tier apply` writes an Archived version's
objects to the cold remote in its storage class; reading one that needs a restore
requests it and says when to retry, in one line; once restored it reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cairn.errors import ObjectArchived
from cairn.objects.hashing import hash_bytes
from cairn.tracking import fluent
from tests.conftest import CliRepo, commit
from tests.s3_server import (  # noqa: F401 - fixtures, used by name
    S3Bucket,
    s3_bucket,
    s3_server,
)

pytestmark = [pytest.mark.s3, pytest.mark.usefixtures("fresh_tracking")]

OLD = b"weights of the model version 1 shipped"


@pytest.fixture
def bucket(request: pytest.FixtureRequest) -> S3Bucket:
    """A fresh bucket on the S3 server."""
    found: S3Bucket = request.getfixturevalue("s3_bucket")
    return found


def with_s3_remotes(repo: CliRepo, bucket: S3Bucket, storage_class: str) -> None:
    """`origin` (hot, the default) and `cold` (tier cold, `storage_class`) in one bucket."""
    for name, prefix in (("origin", "hot"), ("cold", "cold")):
        repo.cairn("remote", "add", name, bucket.url(prefix), *(["-d"] if name == "origin"
                                                                 else []))
        repo.cairn("remote", "modify", name, "endpoint_url", bucket.endpoint)
    repo.cairn("remote", "modify", "cold", "tier", "cold")
    repo.cairn("remote", "modify", "cold", "storage_class", storage_class)


def cold_key(oid: str) -> str:
    return f"cold/objects/{oid[:2]}/{oid[2:]}"


def head(bucket: S3Bucket, key: str) -> dict[str, Any]:
    client: Any = bucket.client()
    return dict(client.head_object(Bucket=bucket.name, Key=key))


def keys(bucket: S3Bucket, prefix: str) -> set[str]:
    client: Any = bucket.client()
    listed = client.list_objects_v2(Bucket=bucket.name, Prefix=prefix).get("Contents", [])
    return {item["Key"] for item in listed}


def archived_v1(repo: CliRepo, tmp_path: Path) -> str:
    """model.bin at tag v1 is what fraud v1 ships; HEAD has moved on and v1 is Archived.
    Everything is pushed; returns v1's weights digest."""
    repo.write("model.bin", OLD)
    repo.cairn("add", "model.bin")
    commit(repo, "v1", tag="v1")
    (tmp_path / "v1").mkdir(exist_ok=True)
    (tmp_path / "v1" / "model.bin").write_bytes(OLD)
    repo.cairn("models", "register", str(tmp_path / "v1"), "--name", "fraud")
    (repo.root / "model.bin").unlink()
    repo.write("model.bin", b"weights of version 2")
    repo.cairn("add", "model.bin")
    commit(repo, "v2")
    repo.cairn("push", "--all-tags")
    repo.cairn("models", "promote", "fraud", "1", "--to", "Archived")
    return hash_bytes(OLD)


def test_objects_land_in_glacier_and_a_pull_asks_for_a_restore(
        repo: CliRepo, bucket: S3Bucket, tmp_path: Path) -> None:
    with_s3_remotes(repo, bucket, "GLACIER")
    oid = archived_v1(repo, tmp_path)

    planned = repo.cairn("tier", "apply", "--dry-run")
    assert f"would move {oid}" in planned.output and "to 'cold'" in planned.output
    repo.cairn("tier", "apply")

    assert head(bucket, cold_key(oid))["StorageClass"] == "GLACIER"
    assert f"hot/objects/{oid[:2]}/{oid[2:]}" not in keys(bucket, "hot/")
    assert keys(bucket, "cold/") == {cold_key(oid)}  # the manifest stayed hot
    assert repo.cairn("fsck", "-r", "cold").exit_code == 0  # unreadable there: not checked

    for cached in (repo.root / ".cairn" / "cache" / "objects").glob("*/*"):
        cached.unlink()  # a fresh cache
    repo.git("-c", "core.hooksPath=/dev/null", "checkout", "-q", "v1")
    refused = repo.cairn("pull", "--force", ok=False)

    assert refused.exit_code != 0
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: model.bin (object {oid}) is in storage class GLACIER on "
                           "remote 'cold'")
    assert "a restore was requested" in line and "retry in 3-5 hours" in line
    assert "Traceback" not in refused.output + refused.stderr

    # moto finishes a restore at once: the retry reads the restored copy
    repo.cairn("pull", "--force")
    assert (repo.root / "model.bin").read_bytes() == OLD


def test_load_model_from_deep_archive_says_to_retry_in_12_hours(
        repo: CliRepo, bucket: S3Bucket, tmp_path: Path) -> None:
    from cairn.registry.loading import model_path

    with_s3_remotes(repo, bucket, "DEEP_ARCHIVE")
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "config.json").write_bytes(b'{"layers": 3}')
    oid = archived_v1(repo, tmp_path)
    repo.cairn("tier", "apply")
    assert head(bucket, cold_key(oid))["StorageClass"] == "DEEP_ARCHIVE"
    for cached in (repo.root / ".cairn" / "cache" / "objects").glob("*/*"):
        cached.unlink()
    fluent._reset_for_tests()

    with pytest.raises(ObjectArchived) as refused:
        model_path("models:/fraud/1")

    message = str(refused.value)
    assert message.startswith("2 objects could not be fetched, e.g.: models:/fraud/1/")
    assert "is in storage class DEEP_ARCHIVE on remote 'cold'" in message
    assert "restore was requested" in message and "retry in 12 hours" in message
    assert "Restore" in head(bucket, cold_key(oid))  # S3 heard the request
    path, _ = model_path("models:/fraud/1")
    assert (path / "model.bin").read_bytes() == OLD


def test_promoting_again_brings_the_objects_back_after_a_restore(
        repo: CliRepo, bucket: S3Bucket, tmp_path: Path) -> None:
    with_s3_remotes(repo, bucket, "GLACIER")
    oid = archived_v1(repo, tmp_path)
    repo.cairn("tier", "apply")
    repo.cairn("models", "promote", "fraud", "1", "--to", "Staging")

    pending = repo.cairn("tier", "apply")

    assert f"object {oid}) is in storage class GLACIER" in pending.stderr
    assert "a restore was requested" in pending.stderr
    assert keys(bucket, "cold/") == {cold_key(oid)}  # not removed before it is copied
    repo.cairn("tier", "apply")  # restored (at once, in moto): copied back, then removed
    assert keys(bucket, "cold/") == set()
    assert f"hot/objects/{oid[:2]}/{oid[2:]}" in keys(bucket, "hot/")


def test_an_apply_that_died_after_copying_finishes_without_reading_the_archived_copy(
        repo: CliRepo, bucket: S3Bucket, tmp_path: Path) -> None:
    """Killed between the copy to GLACIER and the removal from the hot remote: the rerun
    finds the copy there, cannot read it back (it is archived), goes by its size, and
    removes the hot one."""
    with_s3_remotes(repo, bucket, "GLACIER")
    oid = archived_v1(repo, tmp_path)
    client: Any = bucket.client()
    client.put_object(Bucket=bucket.name, Key=cold_key(oid), Body=OLD,
                      StorageClass="GLACIER")

    done = repo.cairn("tier", "apply")

    assert f"moved {oid}" in done.output and not done.stderr
    assert f"hot/objects/{oid[:2]}/{oid[2:]}" not in keys(bucket, "hot/")
    assert head(bucket, cold_key(oid))["StorageClass"] == "GLACIER"
