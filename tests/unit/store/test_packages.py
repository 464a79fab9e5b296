"""Package records on every store (SQLite, PostgreSQL, and a server over either): one
record per digest and version, listed per version, per model and in all."""

from __future__ import annotations

import pytest

from cairn.errors import NotFoundError, UserError
from cairn.store.base import MetadataStore

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def _version(store: MetadataStore, name: str = "fraud") -> int:
    store.create_registered_model(name)
    return store.create_model_version(name, "src", "e" * 64).version


def test_a_package_is_recorded_once_against_its_version(store: MetadataStore) -> None:
    version = _version(store)
    first = store.record_package("fraud", version, DIGEST, "f" * 64, 20480, "ada")
    again = store.record_package("fraud", version, DIGEST, "f" * 64, 20480, "bob")
    assert again == first
    assert (first.name, first.version, first.digest, first.size, first.user_id) == (
        "fraud", version, DIGEST, 20480, "ada")
    assert first.created_time > 0
    store.record_package("fraud", version, OTHER, "0" * 64, 1, "ada")
    assert [p.digest for p in store.list_packages("fraud", version)] == [DIGEST, OTHER]
    assert [p.digest for p in store.list_packages("fraud")] == [DIGEST, OTHER]
    _version(store, "churn")
    store.record_package("churn", 1, DIGEST, "f" * 64, 20480)
    assert [(p.name, p.digest) for p in store.list_packages()] == [
        ("fraud", DIGEST), ("fraud", OTHER), ("churn", DIGEST)]
    assert store.list_packages("churn", 2) == []


def test_a_record_survives_a_rename(store: MetadataStore) -> None:
    version = _version(store)
    store.record_package("fraud", version, DIGEST, "f" * 64, 1)
    store.rename_registered_model("fraud", "fraud2")
    assert [p.name for p in store.list_packages("fraud2")] == ["fraud2"]


def test_bad_records_are_refused(store: MetadataStore) -> None:
    version = _version(store)
    with pytest.raises(NotFoundError):
        store.record_package("nobody", 1, DIGEST, "f" * 64, 1)
    with pytest.raises(NotFoundError):
        store.record_package("fraud", version + 5, DIGEST, "f" * 64, 1)
    with pytest.raises(UserError, match="package digest"):
        store.record_package("fraud", version, "sha256:xyz", "f" * 64, 1)
