"""Experiment tracking commands: runs, experiments, db."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []


# ===== db: schema migrations of the metadata database (owner: helper STORE) ==========

_URI_HELP = ("Tracking URI: sqlite:///PATH, a file path or postgresql://USER@HOST/DB "
             "(default: the current tracking URI).")


def _tracking_uri(uri: str | None) -> str:
    if uri:
        return uri
    from cairn.tracking.backend import get_tracking_uri

    return get_tracking_uri()


@click.group()
def db() -> None:
    """The metadata database: schema revision and upgrades."""


@db.command("upgrade")
@click.argument("uri", required=False)
def db_upgrade(uri: str | None) -> None:
    """Upgrade the database at URI to the newest schema (back it up first)."""
    from cairn.cli import output
    from cairn.store.open import upgrade

    target = _tracking_uri(uri)
    before, after = upgrade(target)
    if before == after:
        output.echo(f"{target}: already at revision {after}")
    else:
        output.echo(f"{target}: upgraded from revision {before or '(empty)'} to {after}")


@db.command("current")
@click.argument("uri", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def db_current(uri: str | None, as_json: bool) -> None:
    """Show the database's schema revision and the newest this Cairn knows."""
    from cairn.cli import output
    from cairn.store.open import current

    target = _tracking_uri(uri)
    revision, head = current(target)
    if as_json:
        output.emit_json({"uri": target, "revision": revision, "head": head,
                          "up_to_date": revision == head})
        return
    state = "up to date" if revision == head else f"run `cairn db upgrade {target}`"
    output.echo(f"{target}: revision {revision or '(empty)'}, newest {head} ({state})")


COMMANDS.append(db)
# ===== end of db ======================================================================
