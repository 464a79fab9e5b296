"""`cairn models webhooks …`: endpoints told of registry events, and their deliveries.

The group is attached to `cairn models` in cli/models.py (`models.add_command(webhooks)`).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from cairn.cli import output
from cairn.cli._client import day

if TYPE_CHECKING:
    from cairn.store.entities import Webhook, WebhookDelivery

@click.group()
def webhooks() -> None:
    """Tell HTTP endpoints of registry events (registrations, stage changes, aliases,
    requests, refused gates), signed with a secret from an environment variable."""


@webhooks.command("add")
@click.argument("name", required=False)
@click.argument("url", required=False)
@click.option("--global", "every_model", is_flag=True,
              help="Hear of every model's events (then give only URL).")
@click.option("--events", "events", multiple=True, metavar="E1,E2",
              help="Event names, comma-separated or repeated (default: all), e.g. "
                   "model_version.stage_changed,alias.set.")
@click.option("--secret-env", required=True, metavar="VAR",
              help="The environment variable holding the signing secret (read when "
                   "sending; the secret is never stored).")
@output.json_option
def webhooks_add(name: str | None, url: str | None, every_model: bool,
                 events: tuple[str, ...], secret_env: str, as_json: bool) -> None:
    """Send events of model NAME to URL (or, with --global, of every model)."""
    from cairn.commands import webhooks as commands

    if every_model and (name is None or url is not None):
        raise click.UsageError("with --global, give only the URL")
    if not every_model and (name is None or url is None):
        raise click.UsageError("give the model NAME and the URL (or --global URL)")
    model, target = (None, name) if every_model else (name, url)
    chosen = [e for item in events for e in item.split(",") if e.strip()]
    hook = commands.add(url=str(target), secret_env=secret_env, name=model, events=chosen)
    if as_json:
        output.emit_json(asdict(hook))
        return
    output.echo(f"Added webhook {hook.id}: {_events(hook)} of {_model(hook)} → {hook.url}.")
    if not os.environ.get(hook.secret_env):
        output.warn(f"${hook.secret_env} is not set here; deliveries fail until it is set "
                    "where they are sent")


@webhooks.command("list")
@click.argument("name", required=False)
@output.json_option
def webhooks_list(name: str | None, as_json: bool) -> None:
    """Every webhook; with NAME, the ones that hear of that model (its own and global)."""
    from cairn.commands import webhooks as commands

    hooks = commands.list_hooks(name=name)
    if as_json:
        output.emit_json([asdict(h) for h in hooks])
        return
    if not hooks:
        output.echo("No webhooks; add one with `cairn models webhooks add NAME URL "
                    "--secret-env VAR`.")
        return
    output.table(["id", "model", "url", "events", "secret", "added"],
                 [(h.id, _model(h), h.url, _events(h), f"${h.secret_env}", day(h.created))
                  for h in hooks])


@webhooks.command("remove")
@click.argument("webhook_id", metavar="ID")
def webhooks_remove(webhook_id: str) -> None:
    """Remove webhook ID; its deliveries not sent yet are dropped."""
    from cairn.commands import webhooks as commands

    commands.remove(webhook_id=webhook_id)
    output.echo(f"Removed webhook {webhook_id}.")


@webhooks.command("deliveries")
@click.argument("name", required=False)
@click.option("--hook", "webhook_id", metavar="ID", help="Only this webhook's.")
@click.option("--state", type=click.Choice(["pending", "sending", "delivered", "failed"]),
              help="Only deliveries in this state.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@output.json_option
def webhooks_deliveries(name: str | None, webhook_id: str | None, state: str | None,
                        limit: int, as_json: bool) -> None:
    """Deliveries newest first: of the webhooks on model NAME, or all."""
    from cairn.commands import webhooks as commands

    found = commands.deliveries(name=name, webhook_id=webhook_id, state=state, limit=limit)
    if as_json:
        output.emit_json([asdict(d) for d in found])
        return
    if not found:
        output.echo("No deliveries.")
        return
    output.table(["id", "hook", "event", "state", "attempts", "when", "last error"],
                 [(d.id, d.webhook_id, d.event, d.state, d.attempts, _when(d),
                   d.last_error or "-") for d in found])


@webhooks.command("deliver")
@output.json_option
def webhooks_deliver(as_json: bool) -> None:
    """Send what is due now, here (for CI, or without a background worker); exits 1 if
    a delivery failed for good."""
    from cairn.commands import webhooks as commands

    counts = commands.deliver()
    if as_json:
        output.emit_json({"delivered": counts.delivered, "retrying": counts.retrying,
                          "failed": counts.failed})
    else:
        output.echo(f"Delivered {counts.delivered}, retrying {counts.retrying}, "
                    f"failed {counts.failed}.")
    if counts.failed:
        output.warn("`cairn models webhooks deliveries --state failed` shows why")
        raise SystemExit(1)


def _model(hook: Webhook) -> str:
    return "every model" if hook.model is None else repr(hook.model)


def _events(hook: Webhook) -> str:
    from cairn.commands.webhooks import EVENT_NAMES

    return "all events" if set(hook.events) >= set(EVENT_NAMES) else ", ".join(hook.events)


def _when(delivery: WebhookDelivery) -> str:
    if delivery.state == "delivered":
        return day(delivery.delivered)
    if delivery.state == "pending":
        return f"next {day(delivery.next_attempt)}"
    return day(delivery.created)
