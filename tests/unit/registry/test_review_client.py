"""Review of the registry API as an MLflow user meets it: defects found, pinned here."""

from __future__ import annotations

from typing import Any

import pytest

import cairn
from cairn.errors import UserError
from cairn.tracking import lineage


def a_version() -> None:
    with open("model.txt", "w") as f:
        f.write("weights")
    cairn.register_model("model.txt", "m")


def test_update_model_version_without_a_description_keeps_it(tracking: str) -> None:
    """MLflow refuses an update with nothing to change; it must not erase the text."""
    a_version()
    client = cairn.Client()
    client.update_model_version("m", 1, description="trained on May data")
    with pytest.raises(UserError, match="nothing to update.*description="):
        client.update_model_version("m", 1)
    assert client.get_model_version("m", 1).description == "trained on May data"
    client.update_model_version("m", 1, description="")  # an explicit "" still clears it
    assert client.get_model_version("m", 1).description == ""


def test_the_audit_log_says_who_updated_a_description(tracking: str) -> None:
    a_version()
    client = cairn.Client()
    client.update_model_version("m", 1, description="better words")
    (update,) = [e for e in client.get_audit_log("m") if e.action == "update"]
    assert update.user_id == lineage.current_user() != ""


def test_the_audit_log_says_who_renamed_and_deleted_a_model(tracking: str) -> None:
    from cairn.store.sql.tables import audit_log

    a_version()
    client = cairn.Client()
    client.rename_registered_model("m", "fraud")
    (rename,) = [e for e in client.get_audit_log("fraud") if e.action == "rename"]
    assert rename.user_id == lineage.current_user()
    client.delete_registered_model("fraud")
    store: Any = client.store
    with store._engine.connect() as conn:  # the model is gone; its log stays
        rows = conn.execute(audit_log.select().where(audit_log.c.action == "delete_model"))
        assert [r.user_id for r in rows] == [lineage.current_user()]
