"""Sending webhooks: the store's outbox delivered, signed, with retries; and gate calls.

A registry change queues its deliveries in its own transaction (`cairn.store`); after
it commits, the caller calls `dispatch`, which costs one indexed query when nothing is
due and otherwise starts a detached worker process (`python -m cairn.registry.webhooks`)
and returns at once. So a slow or dead endpoint never delays or fails the change that
caused the event. The worker sends until nothing is due, waiting out retry delays for
at most `WORKER_BUDGET_S`; what is left waits for the next dispatch or for
`cairn models webhooks deliver`.

Every request is a POST of JSON with the headers X-Cairn-Event, X-Cairn-Delivery (the
delivery id: the same on every retry, so receivers can drop duplicates), User-Agent
cairn/<version> and X-Cairn-Signature: sha256=<hex HMAC-SHA256 of the exact body>, keyed
with the secret read from the hook's environment variable when it is sent. 2xx is
success; anything else, a redirect, a timeout or a refused connection is a failed
attempt, retried with exponential backoff until `RetryPolicy.max_attempts`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cairn.errors import CairnError, UserError
from cairn.registry import permissions
from cairn.store.sql.webhooks import check_url

if TYPE_CHECKING:
    from collections.abc import Sequence
    from urllib.request import Request

    from cairn.store.base import MetadataStore
    from cairn.store.entities import Webhook, WebhookDelivery

DEFAULT_TIMEOUT = 5.0  # seconds to wait for an endpoint's answer
BATCH = 10  # deliveries claimed at once
WORKER_BUDGET_S = 120.0  # how long a background worker waits out retry delays
POLL_S = 0.5
STORE_URI_ENV = "CAIRN_WEBHOOKS_STORE_URI"  # the worker's store: not in argv, which `ps` shows
GATE_EVENT = "gate.check"
MAX_DETAIL = 200


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and the delays between them: base, then each one `factor` times the last, capped."""

    max_attempts: int = 5
    base_delay_s: float = 1.0
    factor: float = 4.0
    max_delay_s: float = 600.0

    def delay_ms(self, attempts_made: int) -> int:
        delay = self.base_delay_s * self.factor ** max(attempts_made - 1, 0)
        return int(min(delay, self.max_delay_s) * 1000)


@dataclass(frozen=True)
class DeliveryCounts:
    """What one round of sending did: delivered, to be retried, failed for good."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def sent(self) -> int:
        return self.delivered + self.retrying + self.failed

    def __add__(self, other: DeliveryCounts) -> DeliveryCounts:
        return DeliveryCounts(self.delivered + other.delivered,
                              self.retrying + other.retrying, self.failed + other.failed)


@dataclass(frozen=True)
class GateAnswer:
    """An external gate's verdict: `passed` only for a 2xx answer in time."""

    passed: bool
    status: int | None  # the HTTP status; None when no answer came
    detail: str

    def __bool__(self) -> bool:
        return self.passed


@dataclass(frozen=True)
class _Answer:
    status: int | None
    error: str  # "" for a 2xx
    first_line: str = ""  # of the body, cleaned for a terminal


# -- signing and posting -------------------------------------------------------------

def add_hook(store: MetadataStore, url: str, events: Sequence[str] | None, secret_env: str,
             name: str | None, user: str) -> Webhook:
    """A hook on model `name` (every model if None): a model's hooks are its MANAGE
    holders' to add (a server's store checks them itself)."""
    if name is not None and not store.enforces_registry_rules:
        permissions.require(store, name, user, "MANAGE", "adding a webhook")
    return store.create_webhook(url, events, secret_env, name, user)


def remove_hook(store: MetadataStore, webhook_id: int, user: str) -> None:
    if not store.enforces_registry_rules:
        hook = next((h for h in store.list_webhooks() if h.id == webhook_id), None)
        if hook is not None and hook.model is not None:
            permissions.require(store, hook.model, user, "MANAGE", "removing a webhook")
    store.delete_webhook(webhook_id, user)


def sign(secret: bytes, body: bytes) -> str:
    """The X-Cairn-Signature value of `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _headers(event: str, body: bytes, secret_env: str | None) -> dict[str, str]:
    """Content and identity headers, signed with the secret in $`secret_env`;
    UserError naming the variable if it is unset."""
    from cairn import __version__

    headers = {"Content-Type": "application/json", "User-Agent": f"cairn/{__version__}",
               "X-Cairn-Event": event}
    if secret_env:
        secret = os.environ.get(secret_env)
        if not secret:
            raise UserError(f"environment variable {secret_env} (the signing secret) is "
                            "not set")
        headers["X-Cairn-Signature"] = sign(secret.encode(), body)
    return headers


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> _Answer:
    """POST once; network trouble becomes an _Answer, never an exception."""
    import http.client
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener().open(request, timeout=timeout) as response:
            status, line = int(response.status), _first_line(response.read(1024))
    except urllib.error.HTTPError as e:  # a non-2xx answer (redirects included)
        status, line = e.code, _first_line(e.read(1024) if e.fp else b"")
    except urllib.error.URLError as e:
        return _Answer(None, _network_error(e.reason, timeout))
    except (OSError, http.client.HTTPException, ValueError) as e:
        return _Answer(None, _network_error(e, timeout))
    if 200 <= status < 300:
        return _Answer(status, "", line)
    return _Answer(status, f"HTTP {status}" + (f": {line}" if line else ""), line)


def _opener() -> Any:
    """urllib with redirects refused: a hook or gate answers itself, or fails."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: Request, fp: Any, code: int, msg: str, headers: Any,
                             newurl: str) -> None:
            return None

    return urllib.request.build_opener(NoRedirect)


def _network_error(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    return _clean(f"cannot reach it: {reason}")


def _first_line(data: bytes) -> str:
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return _clean(lines[0]) if lines else ""


def _clean(text: str) -> str:
    """Text from the network, safe to print: printable characters only, bounded."""
    printable = "".join(c if c.isprintable() else "?" for c in text.strip())
    return printable[:MAX_DETAIL]


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- deliveries --------------------------------------------------------------------------

def deliver_due(store: MetadataStore, *, now: int | None = None, limit: int = 100,
                timeout: float = DEFAULT_TIMEOUT, policy: RetryPolicy | None = None
                ) -> DeliveryCounts:
    """Send each delivery due at `now` (ms; the clock if None) once, up to `limit`, and
    record each outcome: delivered, pending again after a backoff, or failed."""
    policy = policy or RetryPolicy()
    counts = DeliveryCounts()
    lease_ms = int((BATCH * timeout + 60) * 1000)  # longer than a batch can take to send
    while counts.sent < limit:
        claimed = store.claim_due_deliveries(_now_ms() if now is None else now,
                                             min(BATCH, limit - counts.sent), lease_ms)
        if not claimed:
            break
        for delivery in claimed:
            counts += _deliver(store, delivery, now, timeout, policy)
    return counts


def _deliver(store: MetadataStore, delivery: WebhookDelivery, now: int | None,
             timeout: float, policy: RetryPolicy) -> DeliveryCounts:
    body = delivery.payload.encode()
    try:
        headers = _headers(delivery.event, body, delivery.secret_env)
        headers["X-Cairn-Delivery"] = str(delivery.id)
        answer = _post(delivery.url, body, headers, timeout)
    except UserError as e:  # the secret's variable is unset where this runs
        answer = _Answer(None, str(e))
    finished = _now_ms() if now is None else now
    attempts = delivery.attempts + 1
    if not answer.error:
        store.record_delivery_attempt(delivery.id, True, answer.status, "", None, finished)
        return DeliveryCounts(delivered=1)
    if attempts >= policy.max_attempts:
        store.record_delivery_attempt(delivery.id, False, answer.status,
                                      f"{answer.error} (attempt {attempts}, giving up)", None,
                                      finished)
        return DeliveryCounts(failed=1)
    store.record_delivery_attempt(delivery.id, False, answer.status,
                                  f"{answer.error} (attempt {attempts})",
                                  finished + policy.delay_ms(attempts), finished)
    return DeliveryCounts(retrying=1)


def dispatch(store: MetadataStore, store_uri: str) -> subprocess.Popen[bytes] | None:
    """Start a background worker if a delivery is due; call it after a registry change.

    Cheap when nothing is due. Never raises for delivery trouble (nor for failing to
    start the worker: the deliveries wait in the store). Returns the worker, which
    nobody needs to wait for.
    """
    try:
        if not store.has_due_deliveries(_now_ms()):
            return None
        worker = subprocess.Popen(
            [sys.executable, "-m", "cairn.registry.webhooks"],
            env={**os.environ, STORE_URI_ENV: store_uri}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except (CairnError, OSError, subprocess.SubprocessError, ValueError):
        return None
    # Held, not waited for: reaping finished ones here leaves no zombies, and a Popen
    # collected while its child runs would warn.
    _workers[:] = [w for w in _workers if w.poll() is None]
    _workers.append(worker)
    return worker


_workers: list[subprocess.Popen[bytes]] = []


def run_worker(store: MetadataStore, *, budget_s: float = WORKER_BUDGET_S,
               timeout: float = DEFAULT_TIMEOUT) -> DeliveryCounts:
    """Deliver until nothing is due, waiting out retry delays that end within
    `budget_s` of the start; then return."""
    deadline = time.monotonic() + budget_s
    counts = DeliveryCounts()
    while True:
        counts += deliver_due(store, limit=BATCH, timeout=timeout)
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not store.has_due_deliveries(_now_ms() + int(remaining * 1000)):
            return counts
        if not store.has_due_deliveries(_now_ms()):
            time.sleep(min(POLL_S, remaining))


# -- gate calls --------------------------------------------------------------------------

def call_gate(url: str, payload: dict[str, Any], *, timeout: float,
              secret_env: str | None = None) -> GateAnswer:
    """Ask an external gate: POST `payload` as JSON (signed if `secret_env`); a 2xx within
    `timeout` passes. Anything else fails closed, with the reason in `detail`; network
    trouble never raises."""
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    try:
        answer = _post(check_url(url), body, _headers(GATE_EVENT, body, secret_env), timeout)
    except UserError as e:  # a bad URL, or the secret's variable unset
        return GateAnswer(False, None, str(e))
    if answer.error:
        return GateAnswer(False, answer.status, answer.error)
    return GateAnswer(True, answer.status, f"HTTP {answer.status}")


def main(argv: list[str] | None = None) -> int:
    """The background worker: deliver what is due in the store, then exit."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m cairn.registry.webhooks",
                                     description=main.__doc__)
    parser.add_argument("--store-uri", default=os.environ.get(STORE_URI_ENV),
                        help=f"the metadata store (default: ${STORE_URI_ENV})")
    args = parser.parse_args(argv)
    if not args.store_uri:
        parser.error(f"give --store-uri or set {STORE_URI_ENV}")
    from cairn.store.open import open_store

    store = open_store(args.store_uri)
    try:
        run_worker(store)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
