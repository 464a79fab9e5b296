"""`cairn models webhooks …` end to end: add, list, deliver, deliveries, remove, and the
errors a user sees (one line, exit code)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cairn.store.base import MetadataStore
from cairn.tracking.backend import backend
from tests.conftest import CliRepo
from tests.webhook_receiver import Receiver, closed_port, running

SECRET = "hunter2-but-longer"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running() as r:
        yield r


@pytest.fixture(autouse=True)
def hook_secret(monkeypatch: pytest.MonkeyPatch, fresh_tracking: None) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)


@pytest.fixture
def store(repo: CliRepo) -> MetadataStore:
    """The project's store, with model 'fraud' registered."""
    opened = backend().store
    opened.create_registered_model("fraud")
    return opened


def out_json(repo: CliRepo, *args: str) -> Any:
    return json.loads(repo.cairn("models", "webhooks", *args, "--json").output)


def test_add_list_deliver_deliveries_remove(repo: CliRepo, store: MetadataStore,
                                            receiver: Receiver) -> None:
    out = repo.cairn("models", "webhooks", "add", "fraud", receiver.url + "/hook",
                     "--secret-env", "HOOK_SECRET", "--events",
                     "model_version.registered,alias.set", "--events", "alias.deleted")
    assert out.output.startswith("Added webhook 1: model_version.registered, alias.set, "
                                 "alias.deleted of 'fraud' →")
    assert out.stderr == ""  # the secret's variable is set: no warning
    [hook] = out_json(repo, "list")
    assert (hook["model"], hook["url"], hook["secret_env"]) == (
        "fraud", receiver.url + "/hook", "HOOK_SECRET")
    assert "fraud" in repo.cairn("models", "webhooks", "list", "fraud").output

    store.create_model_version("fraud", "/m1", "d1")
    store.set_registered_model_alias("fraud", "champion", 1)
    out = repo.cairn("models", "webhooks", "deliver")
    assert out.stdout == "Delivered 2, retrying 0, failed 0.\n"
    got = receiver.wait_for(2)
    assert sorted(r.event for r in got) == ["alias.set", "model_version.registered"]
    assert all(r.signed_with(SECRET) for r in got)
    assert out_json(repo, "deliver") == {"delivered": 0, "retrying": 0, "failed": 0}

    shown = out_json(repo, "deliveries", "fraud")
    assert [(d["event"], d["state"], d["attempts"]) for d in shown] == [
        ("alias.set", "delivered", 1), ("model_version.registered", "delivered", 1)]
    assert len(out_json(repo, "deliveries", "--state", "delivered", "--limit", "1")) == 1
    assert "alias.set" in repo.cairn("models", "webhooks", "deliveries").output

    assert repo.cairn("models", "webhooks", "remove", "1").stdout == "Removed webhook 1.\n"
    assert "No webhooks" in repo.cairn("models", "webhooks", "list").output
    gone = repo.cairn("models", "webhooks", "remove", "1", ok=False)
    assert gone.exit_code == 1
    assert gone.stderr == ("error: webhook 1 does not exist; `cairn models webhooks list` "
                           "shows them\n")


def test_global_hook_and_unset_secret_warning(repo: CliRepo, store: MetadataStore,
                                              receiver: Receiver) -> None:
    out = repo.cairn("models", "webhooks", "add", "--global", receiver.url,
                     "--secret-env", "NOT_SET_YET")
    assert "all events of every model" in out.output
    assert "$NOT_SET_YET is not set here" in out.stderr
    [hook] = out_json(repo, "list", "fraud")  # a global hook hears of fraud too
    assert hook["model"] is None

    store.create_model_version("fraud", "/m1", "d1")
    out = repo.cairn("models", "webhooks", "deliver")
    assert out.stdout == "Delivered 0, retrying 1, failed 0.\n"  # not given up on yet
    [delivery] = out_json(repo, "deliveries", "--hook", str(hook["id"]))
    assert delivery["state"] == "pending" and "NOT_SET_YET" in delivery["last_error"]
    assert receiver.requests == []


def test_deliver_exits_1_when_a_delivery_fails_for_good(repo: CliRepo,
                                                         store: MetadataStore) -> None:
    hook = store.create_webhook(f"http://127.0.0.1:{closed_port()}/", None, "HOOK_SECRET",
                                "fraud")
    store.create_model_version("fraud", "/m1", "d1")
    for attempt in range(4):  # four failed attempts already, each due again at once
        now = int(time.time() * 1000)
        [claimed] = store.claim_due_deliveries(now, 1, 60_000)
        store.record_delivery_attempt(claimed.id, False, None, f"down {attempt}", now)

    out = repo.cairn("models", "webhooks", "deliver", ok=False)

    assert out.exit_code == 1
    assert out.stdout == "Delivered 0, retrying 0, failed 1.\n"
    assert "--state failed` shows why" in out.stderr
    [failed] = store.search_webhook_deliveries(webhook_id=hook.id, state="failed")
    assert failed.attempts == 5 and "connection refused" in failed.last_error


@pytest.mark.parametrize(("args", "code", "message"), [
    (["add", "fraud", "ftp://example.com/x", "--secret-env", "V"], 2,
     "error: invalid webhook URL 'ftp://example.com/x': use an http:// or https:// URL"),
    (["add", "nope", "https://example.com", "--secret-env", "V"], 1,
     "error: registered model 'nope' does not exist"),
    (["add", "fraud", "https://example.com", "--secret-env", "V", "--events", "promoted"], 2,
     "error: unknown webhook event 'promoted'; events are model_version.registered, "),
    (["add", "fraud", "https://example.com", "--secret-env", "my secret"], 2,
     "error: invalid secret variable 'my secret'"),
    (["add", "fraud", "https://example.com"], 2, "Missing option '--secret-env'"),
    (["add", "--global", "fraud", "https://example.com", "--secret-env", "V"], 2,
     "with --global, give only the URL"),
    (["add", "https://example.com", "--secret-env", "V"], 2,
     "give the model NAME and the URL (or --global URL)"),
    (["remove", "first"], 2, "error: invalid webhook id 'first'"),
    (["deliveries", "--state", "done"], 2, "Invalid value for '--state'"),
    (["list", "nope"], 1, "error: registered model 'nope' does not exist"),
])
def test_errors_are_one_line_with_their_exit_code(repo: CliRepo, store: MetadataStore,
                                                  args: list[str], code: int,
                                                  message: str) -> None:
    result = repo.cairn("models", "webhooks", *args, ok=False)
    assert result.exit_code == code
    assert message in result.stderr
    if result.stderr.startswith("error:"):
        assert result.stderr.count("\n") == 1
    assert out_json(repo, "list") == []
