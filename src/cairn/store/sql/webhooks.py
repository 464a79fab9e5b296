"""The webhook outbox in the SQL store: hooks, and deliveries queued with the change.

A delivery row is written in the same transaction as the audit row it reports, so an
event is queued exactly when its change commits (never for a change rolled back), and
the sending happens afterwards (`cairn.registry.webhooks`): a slow or dead endpoint
cannot block or undo a promotion.
"""

from __future__ import annotations

import json

from sqlalchemy import Connection, or_, select

from cairn.store.entities import AuditEntry
from cairn.store.sql.tables import webhook_deliveries, webhooks

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
    w = webhooks
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
