"""Who held a stage at a moment, replayed from the audit log — which outlives the model."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest

import cairn
from cairn.errors import NotFoundError, UserError
from cairn.registry.history import history, holders_at, parse_moment, stages_at
from cairn.store.entities import AuditEntry


def entry(i: int, version: int, action: str, to: str | None, at: int,
          frm: str | None = None) -> AuditEntry:
    return AuditEntry(i, "m", version, action, frm, to, "ann", at)


def test_replaying_the_log_answers_for_any_moment() -> None:
    log = [entry(1, 1, "register", "None", 10), entry(2, 2, "register", "None", 20),
           entry(3, 1, "transition", "Production", 30, "None"),
           entry(4, 1, "transition", "Archived", 40, "Production"),
           entry(5, 2, "transition", "Production", 40, "None"),
           entry(6, 2, "delete_version", None, 50, "Production")]
    assert stages_at(log, 5) == {}
    assert stages_at(log, 35) == {1: ("Production", 30), 2: ("None", 20)}
    assert stages_at(log, 45) == {1: ("Archived", 40), 2: ("Production", 40)}
    assert stages_at(log, 55) == {1: ("Archived", 40)}


def test_moments() -> None:
    end_of_day = datetime(2026, 3, 3, 23, 59, 59, 999999).timestamp() * 1000
    assert parse_moment("2026-03-03") == int(end_of_day)
    assert parse_moment("2026-03-03T10:00:00Z") == int(
        datetime.fromisoformat("2026-03-03T10:00:00+00:00").timestamp() * 1000)
    with pytest.raises(UserError, match="--at 'yesterday' is not a date"):
        parse_moment("yesterday")


def test_holders_on_a_real_store(tracking: str, tmp_path: Any) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"1")
    client = cairn.Client()
    for _ in range(2):
        cairn.register_model(str(tmp_path / "m"), "m")
    client.transition_model_version_stage("m", 1, "Production")
    time.sleep(0.01)
    between = parse_moment("now")
    time.sleep(0.01)
    client.transition_model_version_stage("m", 2, "Production", archive_existing_versions=True)
    after = parse_moment("now") + 1
    assert holders_at(client.store, "m", "production", after).versions == (2,)
    assert holders_at(client.store, "m", "Production", between).versions == (1,)
    assert holders_at(client.store, "m", "Staging", after).versions == ()


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
