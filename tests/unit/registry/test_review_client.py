"""Review of the registry API as an MLflow user meets it: defects found, pinned here."""

from __future__ import annotations

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
