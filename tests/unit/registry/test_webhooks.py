"""Webhooks: every registry event delivered once, signed; retries with backoff on a fake
clock; background delivery that never slows the change; exclusive claims; gate calls.
Store-level tests run on SQLite and PostgreSQL (`store`)."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from cairn.errors import NotFoundError, PermissionDenied, UserError
from cairn.registry.stages import plan
from cairn.registry.webhooks import (
    DeliveryCounts,
    RetryPolicy,
    add_hook,
    call_gate,
    deliver_due,
    dispatch,
    remove_hook,
    run_worker,
)
from cairn.store.base import MetadataStore
from cairn.store.entities import Decision, StageChange, StageChangeResult
from cairn.store.open import open_store
from tests.webhook_receiver import Receiver, closed_port, running

SECRET = "correct horse battery staple"
ALL_EVENTS = {"model_version.registered", "model_version.stage_changed", "alias.set",
              "alias.deleted", "request.opened", "request.approved", "request.rejected",
              "gate.refused"}


def transition(store: MetadataStore, name: str, version: int, stage: str, user_id: str = "",
               reason: str = "") -> StageChangeResult:
    """A stage change as the store applies it (the gates are not under test here)."""
    return store.apply_stage_change(plan(name, version, stage, user_id=user_id, reason=reason))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running() as r:
        yield r


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)


def now_ms() -> int:
    return int(time.time() * 1000)


def model(store: MetadataStore, name: str = "fraud", versions: int = 0) -> None:
    store.create_registered_model(name)
    for i in range(versions):
        store.create_model_version(name, f"/models/{name}/{i}", f"digest-{name}-{i}")


# Through a server, its routes send deliveries themselves after each change, so what one
# deliver_due() call reports is only part of them; the store's outbox is the same.
@pytest.mark.not_on_rest
def test_every_event_arrives_once_signed(store: MetadataStore, receiver: Receiver) -> None:
    model(store)
    hook = store.create_webhook(receiver.url + "/fraud", None, "HOOK_SECRET", "fraud", "ana")
    assert set(hook.events) == ALL_EVENTS
    store.create_model_version("fraud", "/models/1", "d1", user_id="ana")
    transition(store, "fraud", 1, "staging", user_id="ana", reason="looks good")
    store.set_registered_model_alias("fraud", "champion", 1, "ana")
    store.delete_registered_model_alias("fraud", "champion", "ana")
    opened = store.create_promotion_request("fraud", 1, "Production", user_id="ana")
    store.decide_promotion_request(Decision(opened.id, "bob", True, change=StageChange(
        "fraud", 1, "Production", user_id="bob")))
    refused = store.create_promotion_request("fraud", 1, "Archived", user_id="ana")
    store.decide_promotion_request(Decision(refused.id, "bob", False, comment="keep it"))
    store.add_audit_entry("fraud", 1, "gate_refused", "ana", "f1 below 0.9",
                          {"verdicts": [{"rule": "f1 >= 0.9", "passed": False}]}, "Production")

    counts = deliver_due(store)

    got = receiver.wait_for(10)
    assert counts == DeliveryCounts(delivered=10) and len(got) == 10
    assert Counter(r.event for r in got) == {
        "model_version.registered": 1, "model_version.stage_changed": 2, "alias.set": 1,
        "alias.deleted": 1, "request.opened": 2, "request.approved": 1,
        "request.rejected": 1, "gate.refused": 1}
    assert all(r.signed_with(SECRET) for r in got)
    assert not any(r.signed_with("another secret") for r in got)
    assert all(r.json()["event"] == r.event and r.json()["model"] == "fraud" for r in got)
    assert all(r.path == "/fraud" and r.headers["Content-Type"] == "application/json"
               and r.headers["User-Agent"].startswith("cairn/") for r in got)
    assert len({r.headers["X-Cairn-Delivery"] for r in got}) == 10
    staged = next(r.json() for r in got if r.event == "model_version.stage_changed")
    assert (staged["version"], staged["from"], staged["to"], staged["user"],
            staged["reason"]) == (1, "None", "Staging", "ana", "looks good")
    gate = next(r.json() for r in got if r.event == "gate.refused")
    assert gate["details"]["verdicts"][0]["passed"] is False
    # Sent once: nothing is due any more, a second round sends nothing.
    assert deliver_due(store) == DeliveryCounts()
    assert len(receiver.requests) == 10
    delivered = store.search_webhook_deliveries(webhook_id=hook.id, state="delivered")
    assert len(delivered) == 10 and {d.attempts for d in delivered} == {1}


def test_model_hook_hears_its_model_only_global_hears_all(store: MetadataStore,
                                                          receiver: Receiver) -> None:
    model(store, "fraud")
    model(store, "churn")
    own = store.create_webhook(receiver.url + "/fraud", ["model_version.registered"],
                               "HOOK_SECRET", "fraud")
    every = store.create_webhook(receiver.url + "/all", ["model_version.registered"],
                                 "HOOK_SECRET", None)
    store.create_model_version("fraud", "/f1", "f1")
    store.create_model_version("churn", "/c1", "c1")
    transition(store, "fraud", 1, "Staging")  # an event neither hook asked for

    assert deliver_due(store).delivered == 3
    got = receiver.wait_for(3)
    assert sorted((r.path, r.json()["model"]) for r in got) == [
        ("/all", "churn"), ("/all", "fraud"), ("/fraud", "fraud")]
    assert [h.id for h in store.list_webhooks("churn")] == [every.id]
    assert [h.id for h in store.list_webhooks("fraud")] == [own.id, every.id]
    assert [h.model for h in store.list_webhooks()] == ["fraud", None]


def test_dead_endpoint_is_retried_with_backoff_then_failed(store: MetadataStore) -> None:
    model(store, versions=1)
    hook = store.create_webhook(f"http://127.0.0.1:{closed_port()}/hook",
                                ["model_version.stage_changed"], "HOOK_SECRET", "fraud")
    done = transition(store, "fraud", 1, "Production")
    assert done.version.current_stage == "Production"  # the change did not wait

    clock = now_ms()
    for attempt in range(1, 6):
        assert deliver_due(store, now=clock).sent == 1
        [delivery] = store.search_webhook_deliveries(webhook_id=hook.id)
        assert delivery.attempts == attempt and delivery.last_error.startswith(
            "connection refused")
        if attempt == 5:
            break
        assert delivery.state == "pending"
        assert delivery.next_attempt == clock + 1000 * 4 ** (attempt - 1)  # 1 s, 4, 16, 64
        assert deliver_due(store, now=delivery.next_attempt - 1).sent == 0  # not before
        clock = delivery.next_attempt
    assert delivery.state == "failed" and "giving up" in delivery.last_error
    assert deliver_due(store, now=clock + 10**9).sent == 0
    assert not store.has_due_deliveries(clock + 10**9)
    assert store.get_model_version("fraud", 1).current_stage == "Production"


@pytest.mark.parametrize("status", [500, 302])
def test_non_2xx_is_a_failed_attempt(store: MetadataStore, receiver: Receiver,
                                     status: int) -> None:
    receiver.status, receiver.answer = status, b"database on fire\nmore detail"
    model(store)
    store.create_webhook(receiver.url, None, "HOOK_SECRET", "fraud")
    store.create_model_version("fraud", "/m", "d")

    assert deliver_due(store, policy=RetryPolicy(max_attempts=1)) == DeliveryCounts(failed=1)
    [delivery] = store.search_webhook_deliveries(name="fraud")
    assert delivery.last_status == status
    assert delivery.last_error.startswith(f"HTTP {status}: database on fire")


def test_unset_secret_variable_is_a_failed_attempt_naming_it(
        store: MetadataStore, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    model(store)
    store.create_webhook(receiver.url, None, "HOOK_SECRET", "fraud")
    store.create_model_version("fraud", "/m", "d")
    monkeypatch.delenv("HOOK_SECRET")

    assert deliver_due(store) == DeliveryCounts(retrying=1)
    [delivery] = store.search_webhook_deliveries(state="pending")
    assert "environment variable HOOK_SECRET" in delivery.last_error
    assert "not set" in delivery.last_error
    assert receiver.requests == []  # nothing unsigned went out


def test_slow_endpoint_times_out_as_a_failed_attempt(store: MetadataStore,
                                                     receiver: Receiver) -> None:
    receiver.hold()
    model(store)
    store.create_webhook(receiver.url, None, "HOOK_SECRET", "fraud")
    store.create_model_version("fraud", "/m", "d")

    assert deliver_due(store, timeout=0.3) == DeliveryCounts(retrying=1)
    [delivery] = store.search_webhook_deliveries()
    assert delivery.last_error.startswith("no answer within 0.3 s")
    assert receiver.answered == 0


def test_dispatch_is_a_no_op_when_nothing_is_due(store: MetadataStore,
                                                 store_uri: str) -> None:
    model(store, versions=1)  # no hook: nothing queued
    assert dispatch(store, store_uri) is None


def test_dispatch_never_raises_when_no_worker_can_start(
        store: MetadataStore, store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model(store)
    store.create_webhook("https://example.com/hook", None, "HOOK_SECRET", "fraud")
    store.create_model_version("fraud", "/m", "d")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")

    assert dispatch(store, store_uri) is None
    assert store.has_due_deliveries(now_ms())  # still queued, for the next worker


def test_change_returns_before_a_slow_endpoint_answers_and_worker_delivers(
        store: MetadataStore, store_uri: str, receiver: Receiver) -> None:
    model(store, versions=1)
    store.create_webhook(receiver.url, ["model_version.stage_changed"], "HOOK_SECRET", None)
    receiver.hold()

    transition(store, "fraud", 1, "Production")
    worker = dispatch(store, store_uri)

    assert worker is not None
    try:
        [request] = receiver.wait_for(1)  # the background worker sent it …
        assert receiver.answered == 0  # … and we are here while the endpoint holds it
        assert request.event == "model_version.stage_changed" and request.signed_with(SECRET)
        receiver.release()
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    [delivery] = store.search_webhook_deliveries()
    assert delivery.state == "delivered" and delivery.attempts == 1
    assert len(receiver.requests) == 1
    assert dispatch(store, store_uri) is None  # nothing left to do


def test_worker_waits_out_a_retry_delay_within_its_budget(store: MetadataStore,
                                                         receiver: Receiver) -> None:
    receiver.statuses = [503]  # down once, then up
    model(store)
    store.create_webhook(receiver.url, None, "HOOK_SECRET", "fraud")
    store.create_model_version("fraud", "/m", "d")

    assert run_worker(store, budget_s=20) == DeliveryCounts(delivered=1, retrying=1)
    [delivery] = store.search_webhook_deliveries()
    assert (delivery.state, delivery.attempts) == ("delivered", 2)
    assert len(receiver.requests) == 2


def test_worker_leaves_retries_beyond_its_budget_for_later(store: MetadataStore) -> None:
    model(store)
    store.create_webhook(f"http://127.0.0.1:{closed_port()}/", None, "HOOK_SECRET", "fraud")
    store.create_model_version("fraud", "/m", "d")

    assert run_worker(store, budget_s=0.5) == DeliveryCounts(retrying=1)  # 1 s > 0.5 s
    [delivery] = store.search_webhook_deliveries()
    assert (delivery.state, delivery.attempts) == ("pending", 1)


def test_claims_are_exclusive_and_a_dead_workers_lease_ends(store: MetadataStore,
                                                           store_uri: str) -> None:
    model(store)
    store.create_webhook("http://127.0.0.1:9/hook", None, "HOOK_SECRET", "fraud")
    store.create_model_version("fraud", "/m", "d")
    clock = now_ms()
    other = open_store(store_uri)
    try:
        [claimed] = store.claim_due_deliveries(clock, 10, lease_ms=60_000)
        assert claimed.state == "sending" and claimed.url == "http://127.0.0.1:9/hook"
        assert other.claim_due_deliveries(clock, 10, lease_ms=60_000) == []
        assert not store.has_due_deliveries(clock + 59_999)
        # Its worker died mid-send: once the lease ends, another one takes it over.
        [again] = other.claim_due_deliveries(clock + 60_000, 10, lease_ms=60_000)
        assert again.id == claimed.id and again.attempts == 0
    finally:
        other.close()


def test_concurrent_workers_send_each_delivery_once(store: MetadataStore, store_uri: str,
                                                    receiver: Receiver) -> None:
    receiver.delay_s = 0.02  # both workers are sending at the same time
    model(store)
    store.create_webhook(receiver.url, None, "HOOK_SECRET", None)
    for i in range(16):
        store.create_model_version("fraud", f"/m{i}", f"d{i}")
    stores = [open_store(store_uri), open_store(store_uri)]
    start = threading.Barrier(2)
    results: list[DeliveryCounts] = []

    def work(worker_store: MetadataStore) -> None:
        start.wait(10)
        results.append(deliver_due(worker_store))

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for s in stores:
            s.close()
    assert sum(r.delivered for r in results) == 16 and len(results) == 2
    sent = Counter(r.headers["X-Cairn-Delivery"] for r in receiver.requests)
    assert len(sent) == 16 and set(sent.values()) == {1}


def test_removed_hook_sends_nothing_more(store: MetadataStore, receiver: Receiver) -> None:
    model(store)
    hook = store.create_webhook(receiver.url, None, "HOOK_SECRET", "fraud")
    store.create_model_version("fraud", "/m", "d")
    store.delete_webhook(hook.id)

    assert not store.has_due_deliveries(now_ms())
    assert deliver_due(store) == DeliveryCounts() and receiver.requests == []
    assert store.list_webhooks() == []
    with pytest.raises(NotFoundError, match=f"webhook {hook.id} does not exist"):
        store.delete_webhook(hook.id)
    actions = [e.action for e in store.get_audit_log("fraud")]
    assert "add_webhook" in actions and "remove_webhook" in actions


def test_a_models_hooks_are_its_managers_to_add_and_remove(store: MetadataStore,
                                                          receiver: Receiver) -> None:
    store.create_registered_model("fraud", user_id="ana")  # ana manages it; bo may EDIT
    with pytest.raises(PermissionDenied, match="bo holds EDIT on model 'fraud'; adding a "
                                               "webhook needs MANAGE"):
        add_hook(store, receiver.url, None, "HOOK_SECRET", "fraud", "bo")
    hook = add_hook(store, receiver.url, None, "HOOK_SECRET", "fraud", "ana")
    with pytest.raises(PermissionDenied, match="removing a webhook needs MANAGE"):
        remove_hook(store, hook.id, "bo")
    assert [h.id for h in store.list_webhooks("fraud")] == [hook.id]
    remove_hook(store, hook.id, "ana")
    assert store.list_webhooks("fraud") == []


def test_hook_of_a_deleted_model_is_listed_as_such(store: MetadataStore) -> None:
    model(store, versions=1)
    store.create_webhook("https://example.com/hook", None, "HOOK_SECRET", "fraud")
    store.delete_registered_model("fraud")
    assert [h.model for h in store.list_webhooks()] == ["fraud (deleted)"]
    with pytest.raises(NotFoundError, match="registered model 'fraud' does not exist"):
        store.list_webhooks("fraud")


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "example.com/hook", "http://",
                                 "http://host:port/", "https://exa mple.com/", ""])
def test_bad_url_is_one_clear_error(store: MetadataStore, url: str) -> None:
    with pytest.raises(UserError, match="use an http:// or https:// URL"):
        store.create_webhook(url, None, "HOOK_SECRET")


def test_bad_event_secret_or_model_is_one_clear_error(store: MetadataStore) -> None:
    with pytest.raises(UserError, match=r"unknown webhook event 'model.promoted'; events "
                                        r"are model_version.registered, .*gate.refused"):
        store.create_webhook("https://example.com", ["alias.set", "model.promoted"],
                             "HOOK_SECRET")
    with pytest.raises(UserError, match="the NAME of an environment variable"):
        store.create_webhook("https://example.com", None, "s3cr3t value!")
    with pytest.raises(NotFoundError, match="registered model 'nope' does not exist"):
        store.create_webhook("https://example.com", None, "HOOK_SECRET", "nope")
    with pytest.raises(UserError, match="unknown delivery state 'done'"):
        store.search_webhook_deliveries(state="done")
    assert store.list_webhooks() == []


# -- gate calls ------------------------------------------------------------------------

def test_gate_passes_on_2xx_signed(receiver: Receiver) -> None:
    answer = call_gate(receiver.url + "/gate", {"model": "fraud", "version": 3},
                       timeout=5, secret_env="HOOK_SECRET")
    assert answer and (answer.passed, answer.status) == (True, 200)
    [request] = receiver.requests
    assert request.json() == {"model": "fraud", "version": 3}
    assert request.signed_with(SECRET) and request.event == "gate.check"
    unsigned = call_gate(receiver.url, {}, timeout=5, secret_env=None)
    assert unsigned.passed and "X-Cairn-Signature" not in receiver.wait_for(2)[1].headers


def test_gate_403_blocks_with_the_status_and_first_line(receiver: Receiver) -> None:
    receiver.status, receiver.answer = 403, b"coverage 71% < 80%\n\x1b[31mstack trace"
    answer = call_gate(receiver.url, {"model": "fraud"}, timeout=5, secret_env=None)
    assert not answer and answer.status == 403
    assert answer.detail == "HTTP 403: coverage 71% < 80%"


def test_gate_fails_closed_without_an_answer(receiver: Receiver) -> None:
    receiver.hold()
    slow = call_gate(receiver.url, {}, timeout=0.3, secret_env=None)
    assert (slow.passed, slow.status, slow.detail) == (False, None, "no answer within 0.3 s")
    down = call_gate(f"http://127.0.0.1:{closed_port()}/", {}, timeout=5, secret_env=None)
    assert (down.passed, down.detail) == (False, "connection refused")
    unset = call_gate(receiver.url, {}, timeout=5, secret_env="NOT_SET_ANYWHERE")
    assert not unset.passed and "NOT_SET_ANYWHERE" in unset.detail
    bad = call_gate("file:///etc/passwd", {}, timeout=5, secret_env=None)
    assert not bad.passed and "invalid webhook URL" in bad.detail
