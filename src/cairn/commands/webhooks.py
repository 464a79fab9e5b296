"""The webhook verbs — what `cairn models webhooks …` does: add, list, remove, show
deliveries, and deliver what is due in the foreground.

Each works on the metadata store of `tracking_uri` (default: the current tracking URI).
Nothing is printed: each returns plain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cairn.store.sql.webhooks import EVENT_NAMES

__all__ = ["EVENT_NAMES", "add", "deliver", "deliveries", "list_hooks", "remove"]

if TYPE_CHECKING:
    from cairn.registry.webhooks import DeliveryCounts
    from cairn.store.base import MetadataStore
    from cairn.store.entities import Webhook, WebhookDelivery


def _store(tracking_uri: str | None) -> MetadataStore:
    from cairn.tracking.backend import backend

    return backend(tracking_uri).store


def add(*, url: str, secret_env: str, name: str | None = None, events: Sequence[str] = (),
        tracking_uri: str | None = None) -> Webhook:
    """A hook on model `name` (every model if None) for `events` (all if none)."""
    from cairn.identity import current_user
    from cairn.registry.webhooks import add_hook

    return add_hook(_store(tracking_uri), url, events, secret_env, name, current_user())


def list_hooks(*, name: str | None = None, tracking_uri: str | None = None) -> list[Webhook]:
    """Every hook; with `name`, those that hear of that model (its own and global ones)."""
    return _store(tracking_uri).list_webhooks(name)


def remove(*, webhook_id: int | str, tracking_uri: str | None = None) -> None:
    from cairn.identity import current_user
    from cairn.registry.webhooks import remove_hook

    remove_hook(_store(tracking_uri), _number(webhook_id), current_user())


def deliveries(*, name: str | None = None, webhook_id: int | str | None = None,
               state: str | None = None, limit: int = 50,
               tracking_uri: str | None = None) -> list[WebhookDelivery]:
    """Deliveries newest first, of the hooks on `name` or of one hook, in one state."""
    hook = None if webhook_id is None else _number(webhook_id)
    return _store(tracking_uri).search_webhook_deliveries(hook, name, state, limit)


def deliver(*, tracking_uri: str | None = None) -> DeliveryCounts:
    """Send what is due now, here, once each (retries wait for their time)."""
    from cairn.registry.webhooks import deliver_due

    return deliver_due(_store(tracking_uri))


def _number(webhook_id: int | str) -> int:
    from cairn.errors import UserError

    try:
        return int(webhook_id)
    except ValueError:
        raise UserError(f"invalid webhook id {webhook_id!r}: use a number like 3 "
                        "(`cairn models webhooks list` shows them)") from None
