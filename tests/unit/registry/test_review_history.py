"""Review: "which version held Production on date D" must outlive the model's deletion."""

from __future__ import annotations

import time

import pytest

import cairn
from cairn.errors import NotFoundError
from cairn.registry.history import history, holders_at


def test_the_history_of_a_deleted_model_still_answers(tracking: str) -> None:
    with open("model.txt", "w") as f:
        f.write("weights")
    cairn.register_model("model.txt", "fraud")
    client = cairn.Client()
    client.transition_model_version_stage("fraud", 1, "Production")
    time.sleep(0.01)
    while_live = int(time.time() * 1000)
    time.sleep(0.01)
    client.delete_registered_model("fraud")

    entries = history(client.store, "fraud")
    assert [e.action for e in entries] == ["register", "transition", "delete_model"]
    assert holders_at(client.store, "fraud", "Production", while_live).versions == (1,)
    assert holders_at(client.store, "fraud", "Production", int(time.time() * 1000)
                      ).versions == ()
    with pytest.raises(NotFoundError, match="no registered model 'never'"):
        history(client.store, "never")
