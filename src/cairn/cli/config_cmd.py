"""`cairn config`: read and write the layered TOML configuration."""

from __future__ import annotations

import click

from cairn.cli import output


@click.command("config")
@click.argument("key", required=False)
@click.argument("value", required=False)
@click.option("--local", "level", flag_value="local", help="Write .cairn/config.local.toml.")
@click.option("--global", "level", flag_value="global", help="Write ~/.config/cairn/config.toml.")
@click.option("--repo", "level", flag_value="repo", default=True, hidden=True)
@click.option("--unset", is_flag=True, help="Remove KEY from the chosen file.")
@click.option("-l", "--list", "list_all", is_flag=True, help="Show every key in effect.")
def config(key: str | None, value: str | None, level: str, unset: bool, list_all: bool) -> None:
    """Get or set a config KEY (dotted, e.g. core.remote, remote.origin.url)."""
    from cairn.commands import settings

    if list_all or key is None:
        for k, v in settings.config_list(level=level):
            output.echo(f"{k}={v}")
        return
    if unset:
        settings.config_unset(key, level=level)
    elif value is not None:
        settings.config_set(key, value, level=level)
    else:
        current = settings.config_get(key, level=level)
        if current is None:
            raise click.exceptions.Exit(1)
        output.echo(str(current))


COMMANDS = [config]
