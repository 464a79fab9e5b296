"""`cairn server`: the team server (REST API and the MLflow-compatible routes), and its
users, tokens and permissions (`cairn server users|tokens|grant|revoke`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cairn.cli import output
from cairn.cli._client import day

if TYPE_CHECKING:
    from cairn.commands.server_users import Grant, NewToken

LEVELS = ("READ", "EDIT", "MANAGE")
F = TypeVar("F", bound=Callable[..., Any])


@click.group("server", invoke_without_command=True)
@click.option("--backend-store-uri", help="The database: sqlite:///… or postgresql://… "
              "(default: the current tracking URI).")
@click.option("--artifacts-destination", help="Where artifacts and models are stored: a "
              "directory or s3://bucket/prefix (default: the objects of that database).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes (they share nothing but the database).")
@click.option("--allow-unauthenticated", is_flag=True,
              help="Serve on a non-local address without auth (behind an authenticating "
                   "proxy only).")
@click.option("--auth", is_flag=True, help="Authenticate every request (API tokens, HTTP "
              "basic) and enforce READ/EDIT/MANAGE per experiment and model; create the "
              "first admin with `cairn server users add NAME --admin`.")
@click.option("--default-permission", type=click.Choice(["NONE", "READ", "EDIT"],
                                                        case_sensitive=False),
              default="READ", show_default=True,
              help="With --auth: a user's level on experiments and models nobody granted "
                   "them (NONE: only what they created or were granted).")
@click.option("--allowed-hosts", multiple=True, metavar="HOSTS",
              help="Host names clients may reach the server by, besides the address it "
                   "listens on (and localhost on a loopback address): comma-separated, "
                   "patterns like *.example.com allowed, * for any. Other Host headers "
                   "are refused (DNS rebinding).")
@click.pass_context
def server(ctx: click.Context, backend_store_uri: str | None,
           artifacts_destination: str | None, host: str, port: int, workers: int,
           allow_unauthenticated: bool, auth: bool, default_permission: str,
           allowed_hosts: tuple[str, ...]) -> None:
    """Serve runs, models and artifacts over HTTP: Cairn's REST API at /api/v1/ (OpenAPI
    document at /api/v1/openapi.json) and the routes the mlflow client calls."""
    if ctx.invoked_subcommand is not None:
        return
    from cairn.commands import server as commands

    served = commands.prepare(backend_store_uri=backend_store_uri,
                              artifacts_destination=artifacts_destination, host=host,
                              port=port, allow_unauthenticated=allow_unauthenticated,
                              auth=auth, default_permission=default_permission,
                              allowed_hosts=tuple(h for given in allowed_hosts
                                                  for h in given.split(",")))

    def started() -> None:
        output.echo(f"Cairn server at {served.url} (database {served.backend_store_uri}, "
                    f"artifacts {served.artifacts_destination}"
                    f"{', auth on' if auth else ''}); Ctrl-C stops it.")

    commands.serve(served, host=host, port=port, workers=workers, started=started)


db_option = click.option("--backend-store-uri", "db", help="The server's database "
                         "(default: as `cairn server`'s).")


def _db(ctx: click.Context, db: str | None) -> str | None:
    """This command's --backend-store-uri, else the one given to `cairn server`."""
    if db is not None:
        return db
    parent = ctx.parent
    while parent is not None and parent.command.name != "server":
        parent = parent.parent
    found = parent.params.get("backend_store_uri") if parent is not None else None
    return str(found) if found else None


def _show_token(new: NewToken, as_json: bool) -> None:
    if as_json:
        output.emit_json({**asdict(new.token), "token": new.secret})
        return
    output.echo(f"Token {new.token.id} for {new.token.user} (shown once, stored only "
                f"hashed):\n\n    {new.secret}\n\nUse it as MLFLOW_TRACKING_TOKEN, or as "
                f"MLFLOW_TRACKING_PASSWORD with MLFLOW_TRACKING_USERNAME={new.token.user}.")


# -- users ---------------------------------------------------------------------------------

@server.group()
def users() -> None:
    """The server's users (with --auth)."""


@users.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May do everything, on every experiment and "
              "model.")
@click.option("--password", is_flag=True, help="Also set a password (prompted) for HTTP "
              "basic; a token works there without one.")
@db_option
@output.json_option
@click.pass_context
def users_add(ctx: click.Context, name: str, admin: bool, password: bool, db: str | None,
              as_json: bool) -> None:
    """Add a user and print their first token (once)."""
    from cairn.commands import server_users as commands

    secret = click.prompt("Password", hide_input=True, confirmation_prompt=True) \
        if password else None
    user, token = commands.add_user(name, admin=admin, password=secret,
                                    backend_store_uri=_db(ctx, db))
    if not as_json:
        output.echo(f"Added {'admin ' if user.is_admin else 'user '}{user.name}.")
    _show_token(token, as_json)


@users.command("list")
@db_option
@output.json_option
@click.pass_context
def users_list(ctx: click.Context, db: str | None, as_json: bool) -> None:
    """List the users."""
    from cairn.commands import server_users as commands

    found = commands.list_users(backend_store_uri=_db(ctx, db))
    if as_json:
        output.emit_json([asdict(u) for u in found])
        return
    if not found:
        output.echo("No users; add the first admin with `cairn server users add NAME "
                    "--admin`.")
        return
    output.table(["name", "admin", "password", "created"],
                 [(u.name, "yes" if u.is_admin else "", "yes" if u.has_password else "",
                   day(u.created_time)) for u in found])


@users.command("remove")
@click.argument("name")
@db_option
@click.pass_context
def users_remove(ctx: click.Context, name: str, db: str | None) -> None:
    """Remove a user, their tokens (refused at once) and their grants."""
    from cairn.commands import server_users as commands

    commands.remove_user(name, backend_store_uri=_db(ctx, db))
    output.echo(f"Removed user {name}, their tokens and their grants.")


# -- tokens --------------------------------------------------------------------------------

@server.group()
def tokens() -> None:
    """API tokens (with --auth): shown once, stored hashed."""


@tokens.command("create")
@click.argument("user")
@click.option("--label", default="", help="What the token is for, e.g. 'CI'.")
@db_option
@output.json_option
@click.pass_context
def tokens_create(ctx: click.Context, user: str, label: str, db: str | None,
                  as_json: bool) -> None:
    """Create a token for USER and print it (once)."""
    from cairn.commands import server_users as commands

    _show_token(commands.create_token(user, label=label, backend_store_uri=_db(ctx, db)),
                as_json)


@tokens.command("list")
@click.option("--user", help="Only this user's tokens.")
@db_option
@output.json_option
@click.pass_context
def tokens_list(ctx: click.Context, user: str | None, db: str | None, as_json: bool) -> None:
    """List tokens (their first characters, never the whole token)."""
    from cairn.commands import server_users as commands

    found = commands.list_tokens(user=user, backend_store_uri=_db(ctx, db))
    if as_json:
        output.emit_json([asdict(t) for t in found])
        return
    if not found:
        output.echo("No tokens.")
        return
    output.table(["id", "user", "token", "label", "created", "last used", "revoked"],
                 [(t.id, t.user, t.prefix + "…", t.label, day(t.created_time),
                   day(t.last_used_time), day(t.revoked_time)) for t in found])


@tokens.command("revoke")
@click.argument("token_id", type=int)
@db_option
@click.pass_context
def tokens_revoke(ctx: click.Context, token_id: int, db: str | None) -> None:
    """Revoke token TOKEN_ID (see `tokens list`): refused from the next request on."""
    from cairn.commands import server_users as commands

    token = commands.revoke_token(token_id, backend_store_uri=_db(ctx, db))
    output.echo(f"Revoked token {token.id} ({token.prefix}…) of {token.user}.")


# -- permissions ---------------------------------------------------------------------------

def _targets(fn: F) -> F:
    """--experiment and --model: the one thing a grant is on."""
    fn = click.option("--model", help="A registered model, by name.")(fn)
    return click.option("--experiment", help="An experiment, by name or id.")(fn)


def _where(done: Grant) -> str:
    return f"experiment {done.experiment}" if done.experiment is not None \
        else f"model '{done.model}'"


@server.command("grant")
@click.argument("user")
@click.argument("permission", type=click.Choice(LEVELS, case_sensitive=False))
@_targets
@db_option
@click.pass_context
def grant(ctx: click.Context, user: str, permission: str, experiment: str | None,
          model: str | None, db: str | None) -> None:
    """Give USER ('*': everyone else) PERMISSION on one experiment or model."""
    from cairn.commands import server_users as commands

    done = commands.grant(user, permission, experiment=experiment, model=model,
                          backend_store_uri=_db(ctx, db))
    output.echo(f"{done.user} now holds {done.level} on {_where(done)}.")


@server.command("revoke")
@click.argument("user")
@_targets
@db_option
@click.pass_context
def revoke(ctx: click.Context, user: str, experiment: str | None, model: str | None,
           db: str | None) -> None:
    """Take USER's grant away on one experiment or model (the default applies again)."""
    from cairn.commands import server_users as commands

    done = commands.grant(user, None, experiment=experiment, model=model,
                          backend_store_uri=_db(ctx, db))
    output.echo(f"{done.user} no longer holds a grant on {_where(done)}.")


COMMANDS: list[click.Command] = [server]
