"""The reproduce rows of the audit log: the newest one is a version's standing."""

from __future__ import annotations

import pytest

from cairn.objects.hashing import hash_bytes
from cairn.registry import reproduction
from cairn.store.base import MetadataStore


def test_the_newest_reproduce_row_is_the_standing(store: MetadataStore) -> None:
    store.create_model_version("m", "models/m.pkl", hash_bytes(b"m"))
    store.create_model_version("m", "models/m.pkl", hash_bytes(b"n"))
    assert reproduction.last_reproduction(store, "m", 1) is None
    assert not reproduction.passed(None)
    reproduction.record(store, "m", 1, reproduction.MATCH, "same digest", {}, "ana")
    reproduction.record(store, "m", 2, reproduction.MATCH, "same digest", {}, "ana")
    store.add_audit_entry("m", 1, "transition", to_value="Staging")  # not a reproduction
    failed = reproduction.record(store, "m", 1, reproduction.FAILED, "data gone",
                                 {"error": "data gone"}, "bo")
    last = reproduction.last_reproduction(store, "m", 1)
    assert last is not None and last.id == failed.id and last.to_value == "failed"
    assert last.user_id == "bo" and last.details == {"error": "data gone"}
    assert not reproduction.passed(last)
    last_of_2 = reproduction.last_reproduction(store, "m", 2)
    assert reproduction.passed(last_of_2)
    reproduction.record(store, "m", 1, reproduction.WITHIN_TOLERANCE, "close", {}, "bo")
    assert reproduction.passed(reproduction.last_reproduction(store, "m", 1))


def test_an_unknown_status_is_refused(store: MetadataStore) -> None:
    store.create_model_version("m", "models/m.pkl", hash_bytes(b"m"))
    with pytest.raises(ValueError, match="unknown reproduction status 'ok'"):
        reproduction.record(store, "m", 1, "ok", "", {}, "ana")
    assert reproduction.last_reproduction(store, "m", 1) is None
