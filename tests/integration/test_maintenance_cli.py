"""gc / fsck / du through the CLI, in real git repositories with a local-directory remote."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cairn.objects.hashing import hash_bytes
from tests.conftest import CliRepo
from tests.s3_server import S3Bucket, s3_bucket, s3_server  # noqa: F401 - fixtures


def object_path(repo: CliRepo, data: bytes) -> Path:
    oid = hash_bytes(data)
    return repo.root / ".cairn/cache/objects" / oid[:2] / oid[2:]


def add_remote(repo: CliRepo, tmp_path: Path) -> Path:
    storage = tmp_path / "storage"
    storage.mkdir()
    repo.cairn("remote", "add", "-d", "origin", str(storage))
    return storage


def push_all(repo: CliRepo) -> None:
    """Push what the workspace and every commit reference."""
    repo.cairn("push", "--all-commits")


def two_versions(repo: CliRepo, tag: str | None = None) -> tuple[bytes, bytes]:
    """model.pkl committed at v1 (tagged `tag`), then changed to v2 in the workspace."""
    v1, v2 = b"weights v1" * 100, b"weights v2" * 100
    repo.write("model.pkl", v1)
    repo.cairn("add", "model.pkl")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "v1")
    if tag:
        repo.git("tag", tag)
    repo.write("model.pkl", v2)
    repo.cairn("add", "model.pkl")
    return v1, v2


def test_gc_keeps_the_workspace_and_tagged_versions(repo: CliRepo) -> None:
    v1, v2 = two_versions(repo, tag="model-v1")
    repo.cairn("gc", "--all-tags", "--force")
    assert object_path(repo, v1).exists() and object_path(repo, v2).exists()
    out = repo.cairn("gc", "--workspace", "--force").output
    assert "Removed 1 object(s) from the cache, freeing 1000 B (1000 bytes)" in out
    assert not object_path(repo, v1).exists() and object_path(repo, v2).exists()
    assert "up to date" in repo.cairn("status").output


def test_dry_run_reports_every_object_and_bytes_and_changes_nothing(repo: CliRepo) -> None:
    v1, _ = two_versions(repo)
    report = json.loads(repo.cairn("gc", "--force", "--dry-run", "--json").output)
    assert report["dry_run"] is True
    assert report["removed"] == {hash_bytes(v1): 1000} and report["bytes_freed"] == 1000
    text = repo.cairn("gc", "--force", "--dry-run").output
    assert hash_bytes(v1) in text and "Would remove 1 object(s)" in text
    assert object_path(repo, v1).exists()


def test_without_a_remote_gc_deletes_nothing_and_says_why(repo: CliRepo) -> None:
    v1, _ = two_versions(repo)
    result = repo.cairn("gc")
    assert "no default remote is configured" in result.stderr
    assert "rerun with --force" in result.stderr
    assert object_path(repo, v1).exists()


def test_with_a_remote_holding_a_copy_gc_deletes_it(repo: CliRepo, tmp_path: Path) -> None:
    storage = add_remote(repo, tmp_path)
    v1, v2 = two_versions(repo)
    push_all(repo)  # both versions are now on the remote
    repo.write("notes.bin", b"never pushed")
    repo.cairn("add", "notes.bin")
    repo.write("notes.bin", b"notes v2")
    repo.cairn("add", "notes.bin")
    result = repo.cairn("gc")
    assert not object_path(repo, v1).exists()
    assert object_path(repo, b"never pushed").exists()
    assert "kept 1 unreferenced object(s)" in result.stderr and "'origin'" in result.stderr
    on_remote = {p.parent.name + p.name for p in (storage / "objects").glob("*/*")}
    assert hash_bytes(v1) in on_remote  # plain gc never touches the remote
    repo.cairn("gc", "--cloud")
    on_remote = {p.parent.name + p.name for p in (storage / "objects").glob("*/*")}
    assert on_remote == {hash_bytes(v2)}


def test_fsck_quarantines_a_flipped_byte_and_checkout_refuses_it(repo: CliRepo) -> None:
    data = b"precious model bytes"
    repo.write("models/model.pkl", data)
    repo.cairn("add", "models/model.pkl")
    obj = object_path(repo, data)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"precious model bytez")

    result = repo.cairn("fsck", ok=False)
    assert result.exit_code == 1
    assert "models/model.pkl" in result.output and "quarantined" in result.output
    assert "fsck found 1 bad object(s)" in result.stderr
    assert not obj.exists()
    assert (repo.root / ".cairn/cache/quarantine" / hash_bytes(data)).exists()

    (repo.root / "models/model.pkl").unlink()
    refused = repo.cairn("checkout", ok=False)
    assert refused.exit_code != 0 and "cairn pull" in refused.stderr
    assert not (repo.root / "models/model.pkl").exists()
    assert repo.cairn("fsck").exit_code == 0  # the bad copy is out of the way


def test_pull_fetches_a_quarantined_object_again(repo: CliRepo, tmp_path: Path) -> None:
    add_remote(repo, tmp_path)
    data = b"model weights on the remote"
    repo.write("model.pkl", data)
    repo.cairn("add", "model.pkl")
    push_all(repo)
    obj = object_path(repo, data)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"x" + data[1:])
    assert repo.cairn("fsck", "--remote", "origin", ok=False).exit_code == 1
    (repo.root / "model.pkl").unlink()
    repo.cairn("pull")
    assert obj.exists() and (repo.root / "model.pkl").read_bytes() == data
    assert "and 1 in remote 'origin': all good" in repo.cairn("fsck", "-r", "origin").output


def test_fsck_remote_reports_corruption_without_deleting(repo: CliRepo, tmp_path: Path) -> None:
    storage = add_remote(repo, tmp_path)
    repo.write("a.bin", b"remote copy")
    repo.cairn("add", "a.bin")
    push_all(repo)
    oid = hash_bytes(b"remote copy")
    remote_obj = storage / "objects" / oid[:2] / oid[2:]
    os.chmod(remote_obj, 0o644)
    remote_obj.write_bytes(b"remote cop!")
    result = repo.cairn("fsck", "-r", "origin", "--json", ok=False)
    assert "left in place" in result.stderr
    report = json.loads(result.stdout)
    assert report["remote"] == "origin" and report["remote_checked"] == 1
    assert [(p["oid"], p["store"], p["paths"], p["quarantined"]) for p in report["problems"]] \
        == [(oid, "origin", ["a.bin"], False)]
    assert remote_obj.exists() and object_path(repo, b"remote copy").exists()


def test_du_reports_a_dedup_ratio_of_two_for_a_duplicated_file(repo: CliRepo,
                                                               tmp_path: Path) -> None:
    add_remote(repo, tmp_path)
    repo.write("data/train.csv", b"a,b\n" * 1000)
    repo.write("copy/train.csv", b"a,b\n" * 1000)
    repo.cairn("add", "data/train.csv", "copy/train.csv")
    report = json.loads(repo.cairn("du", "--json").output)
    assert report["logical_bytes"] == 8000 and report["files"] == 2
    assert report["stores"] == [
        {"store": "cache", "objects": 1, "bytes": 4000, "dedup_ratio": 2.0}]
    push_all(repo)
    report = json.loads(repo.cairn("du", "-r", "origin", "--json").output)
    assert report["stores"][1] == {"store": "origin", "objects": 1, "bytes": 4000,
                                   "dedup_ratio": 2.0}
    text = repo.cairn("du", "-r", "origin").output
    assert "7.8 KiB" in text and "3.9 KiB" in text and "2.00x" in text


@pytest.mark.s3
def test_gc_fsck_and_du_against_an_s3_remote(repo: CliRepo,
                                             request: pytest.FixtureRequest) -> None:
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    repo.cairn("remote", "add", "-d", "origin", bucket.url())
    repo.cairn("remote", "modify", "origin", "endpoint_url", bucket.endpoint)
    v1, v2 = two_versions(repo)
    push_all(repo)
    repo.cairn("push")  # v2, from the workspace
    assert json.loads(repo.cairn("du", "-r", "origin", "--json").output)["stores"][1][
        "objects"] == 2
    assert "and 2 in remote 'origin': all good" in repo.cairn("fsck", "-r", "origin").output
    report = json.loads(repo.cairn("gc", "--cloud", "--json").output)
    assert report["removed"] == report["removed_from_remote"] == {hash_bytes(v1): 1000}
    listing = bucket.client().list_objects_v2(Bucket=bucket.name)  # type: ignore[attr-defined]
    kept = hash_bytes(v2)
    assert [k["Key"] for k in listing["Contents"]] == [f"store/objects/{kept[:2]}/{kept[2:]}"]
