"""The webhook outbox in the SQL store: hooks, and deliveries queued with the change.

A delivery row is written in the same transaction as the audit row it reports, so an
event is queued exactly when its change commits (never for a change rolled back), and
the sending happens afterwards (`cairn.registry.webhooks`): a slow or dead endpoint
cannot block or undo a promotion.

Claiming is a conditional UPDATE (… WHERE id = ? AND state = ? AND next_attempt = ?)
whose row count says who won, so two workers never send one delivery twice — on
SQLite (writers queue on BEGIN IMMEDIATE) and on PostgreSQL (the loser's UPDATE waits
for the winner's row lock, then no longer matches) alike. A worker killed mid-send
leaves its deliveries `sending`; once their lease ends they are due again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, Row, literal, or_, select

from cairn.errors import NotFoundError, UserError
from cairn.store.base import MetadataStore
from cairn.store.entities import AuditEntry, Webhook, WebhookDelivery
from cairn.store.sql import registry as sql_registry  # it imports this module: call time only
from cairn.store.sql.common import now_ms
from cairn.store.sql.engine import transaction
from cairn.store.sql.tables import audit_log, registered_models, webhook_deliveries, webhooks

# audit action → the event name a webhook subscribes to
EVENTS = {
    "register": "model_version.registered",
    "transition": "model_version.stage_changed",
    "set_alias": "alias.set",
    "delete_alias": "alias.deleted",
    "request_opened": "request.opened",
    "request_approved": "request.approved",
    "request_rejected": "request.rejected",
    "gate_refused": "gate.refused",
}
EVENT_NAMES = tuple(EVENTS.values())
DELIVERY_STATES = ("pending", "sending", "delivered", "failed")
DUE_STATES = ("pending", "sending")  # sending: due again once its lease ends
MAX_LIMIT = 10000
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")
_BAD_URL_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")
w, d, rm = webhooks, webhook_deliveries, registered_models


def payload(event: str, entry: AuditEntry) -> dict[str, object]:
    return {"event": event, "model": entry.name, "version": entry.version,
            "action": entry.action, "from": entry.from_value, "to": entry.to_value,
            "user": entry.user_id, "timestamp": entry.timestamp, "reason": entry.reason,
            "details": entry.details, "audit_id": entry.id}


def enqueue(conn: Connection, model_id: int, entry: AuditEntry) -> None:
    """Queue a delivery of `entry` to every hook of its model, or global, that wants it."""
    event = EVENTS.get(entry.action)
    if event is None:
        return
    hooks = conn.execute(select(w.c.id, w.c.events).where(
        or_(w.c.model_id == model_id, w.c.model_id.is_(None)))).all()
    wanted = [hook_id for hook_id, events in hooks if event in json.loads(events)]
    if not wanted:
        return
    body = json.dumps(payload(event, entry), sort_keys=True, default=str)
    conn.execute(webhook_deliveries.insert(), [
        {"webhook_id": hook_id, "event": event, "payload": body, "state": "pending",
         "attempts": 0, "next_attempt": entry.timestamp, "last_status": None,
         "last_error": "", "created_time": entry.timestamp, "delivered_time": None}
        for hook_id in wanted])


# -- checks (the registry's gate calls use check_url too) -------------------------------

def check_url(url: object) -> str:
    """An http(s) URL with a host, or a UserError saying what one looks like."""
    if isinstance(url, str) and not _BAD_URL_CHARS.search(url):
        try:
            parts = urlsplit(url)
            _ = parts.port  # a port that is not a number raises here
            if parts.scheme in ("http", "https") and parts.hostname:
                return url
        except ValueError:
            pass
    raise UserError(f"invalid webhook URL {url!r}: use an http:// or https:// URL with a "
                    "host, like https://hooks.example.com/cairn")


def check_events(events: Sequence[str] | None) -> tuple[str, ...]:
    """The events asked for, in EVENT_NAMES order (all of them when none are named)."""
    asked = [e.strip() for e in events or () if e.strip()]
    unknown = [e for e in asked if e not in EVENT_NAMES]
    if unknown:
        raise UserError(f"unknown webhook event {unknown[0]!r}; events are "
                        f"{', '.join(EVENT_NAMES)}")
    return tuple(e for e in EVENT_NAMES if e in asked) if asked else EVENT_NAMES


def check_secret_env(secret_env: object) -> str:
    if not isinstance(secret_env, str) or not _ENV_NAME.match(secret_env):
        raise UserError(f"invalid secret variable {secret_env!r}: give the NAME of an "
                        "environment variable holding the signing secret (like "
                        "CAIRN_HOOK_SECRET), not the secret itself")
    return secret_env


def check_state(state: str | None) -> None:
    if state is not None and state not in DELIVERY_STATES:
        raise UserError(f"unknown delivery state {state!r}; use one of "
                        f"{', '.join(DELIVERY_STATES)}")


def _check_limit(limit: int) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise UserError(f"invalid limit {limit!r}: use a number from 1 to {MAX_LIMIT}")
    return limit


def _hook_id(webhook_id: object) -> int:
    try:
        return int(str(webhook_id))
    except ValueError:
        raise UserError(f"invalid webhook id {webhook_id!r}: use a number like 3 "
                        "(`cairn models webhooks list` shows them)") from None


class WebhookStore(MetadataStore):
    """Webhooks and their outbox: the notification part of SqlStore."""

    _engine: Engine

    def create_webhook(self, url: str, events: Sequence[str] | None, secret_env: str,
                       name: str | None = None, user_id: str = "") -> Webhook:
        url, chosen, secret_env = check_url(url), check_events(events), check_secret_env(
            secret_env)
        with transaction(self._engine, write=True, durable=True) as conn:
            model = None if name is None else sql_registry._model_row(conn, name)
            now = now_ms()
            hook_id = conn.execute(w.insert().returning(w.c.id), {
                "model_id": None if model is None else model.model_id, "url": url,
                "events": json.dumps(list(chosen)), "secret_env": secret_env,
                "created_by": user_id, "created_time": now}).scalar_one()
            if model is not None and name is not None:  # a global hook has no model's log
                sql_registry.record_audit(
                    conn, model.model_id, name, None, "add_webhook", None, _origin(url),
                    user_id, details={"webhook_id": hook_id, "events": list(chosen)}, now=now)
            return Webhook(hook_id, name, url, chosen, secret_env, user_id, now)

    def list_webhooks(self, name: str | None = None) -> list[Webhook]:
        query = (select(w, rm.c.name.label("model_name"))
                 .outerjoin(rm, rm.c.model_id == w.c.model_id).order_by(w.c.id))
        with transaction(self._engine, write=False) as conn:
            if name is not None:
                model = sql_registry._model_row(conn, name)
                query = query.where(or_(w.c.model_id == model.model_id, w.c.model_id.is_(None)))
            return [_webhook(conn, row) for row in conn.execute(query).all()]

    def delete_webhook(self, webhook_id: int, user_id: str = "") -> None:
        number = _hook_id(webhook_id)
        with transaction(self._engine, write=True, durable=True) as conn:
            row = conn.execute(select(w, rm.c.name.label("model_name"))
                               .outerjoin(rm, rm.c.model_id == w.c.model_id)
                               .where(w.c.id == number)).first()
            if row is None:
                raise NotFoundError(f"webhook {webhook_id} does not exist; "
                                    "`cairn models webhooks list` shows them")
            conn.execute(d.delete().where(d.c.webhook_id == number))
            conn.execute(w.delete().where(w.c.id == number))
            if row.model_name is not None:
                sql_registry.record_audit(
                    conn, row.model_id, row.model_name, None, "remove_webhook",
                    _origin(row.url), None, user_id, details={"webhook_id": number})

    def search_webhook_deliveries(self, webhook_id: int | None = None,
                                  name: str | None = None, state: str | None = None,
                                  limit: int = 100) -> list[WebhookDelivery]:
        check_state(state)
        query = _deliveries().order_by(d.c.id.desc()).limit(_check_limit(limit))
        if webhook_id is not None:
            query = query.where(d.c.webhook_id == _hook_id(webhook_id))
        if state is not None:
            query = query.where(d.c.state == state)
        with transaction(self._engine, write=False) as conn:
            if name is not None:
                query = query.where(w.c.model_id == sql_registry._model_row(conn, name).model_id)
            return [_delivery(row) for row in conn.execute(query).all()]

    def claim_due_deliveries(self, now: int, limit: int, lease_ms: int
                             ) -> list[WebhookDelivery]:
        due = (select(d.c.id, d.c.state, d.c.next_attempt)
               .where(d.c.state.in_(DUE_STATES), d.c.next_attempt <= now)
               .order_by(d.c.next_attempt, d.c.id).limit(_check_limit(limit)))
        with transaction(self._engine, write=True) as conn:
            won = []
            for row in conn.execute(due).all():
                claim = d.update().where(d.c.id == row.id, d.c.state == row.state,
                                         d.c.next_attempt == row.next_attempt)
                if conn.execute(claim.values(state="sending",
                                             next_attempt=now + lease_ms)).rowcount == 1:
                    won.append(row.id)
            if not won:
                return []
            rows = conn.execute(_deliveries().where(d.c.id.in_(won)).order_by(d.c.id)).all()
            return [_delivery(row) for row in rows]

    def record_delivery_attempt(self, delivery_id: int, ok: bool, status: int | None,
                                error: str, next_attempt: int | None,
                                now: int | None = None) -> None:
        when = now_ms() if now is None else now
        if ok:
            values: dict[str, Any] = {"state": "delivered", "delivered_time": when,
                                      "last_error": ""}
        elif next_attempt is not None:
            values = {"state": "pending", "next_attempt": next_attempt, "last_error": error}
        else:
            values = {"state": "failed", "last_error": error}
        with transaction(self._engine, write=True) as conn:
            conn.execute(d.update().where(d.c.id == int(delivery_id), d.c.state == "sending")
                         .values(attempts=d.c.attempts + 1, last_status=status, **values))

    def has_due_deliveries(self, now: int) -> bool:
        query = select(literal(1)).where(d.c.state.in_(DUE_STATES),
                                         d.c.next_attempt <= now).limit(1)
        with transaction(self._engine, write=False) as conn:
            return conn.execute(query).first() is not None


def _origin(url: str) -> str:
    """scheme://host[:port] only: a hook's path often carries a token (Slack's do)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _deliveries() -> Any:
    return select(d, w.c.url, w.c.secret_env).join(w, w.c.id == d.c.webhook_id)


def _delivery(row: Row[Any]) -> WebhookDelivery:
    return WebhookDelivery(row.id, row.webhook_id, row.event, row.payload, row.state,
                           row.attempts, row.next_attempt, row.last_status, row.last_error,
                           row.created_time, row.delivered_time, row.url, row.secret_env)


def _webhook(conn: Connection, row: Row[Any]) -> Webhook:
    model = row.model_name
    if row.model_id is not None and model is None:  # its model was deleted since
        a = audit_log
        last = conn.execute(select(a.c.model_name).where(a.c.model_id == row.model_id)
                            .order_by(a.c.id.desc()).limit(1)).scalar()
        model = f"{last or '#' + str(row.model_id)} (deleted)"
    return Webhook(row.id, model, row.url, tuple(json.loads(row.events)), row.secret_env,
                   row.created_by, row.created_time)
