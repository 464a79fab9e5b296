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
    from cairn.config import key_type
    from cairn.project.context import find_config

    cfg = find_config(level)
    if list_all or key is None:
        for k, v in _flatten(cfg.merged()):
            output.echo(f"{k}={v}")
        return
    key_type(key)  # rejects unknown keys with the list of known ones
    if unset:
        cfg.unset(key, level)
    elif value is not None:
        cfg.set(key, value, level)
    else:
        current = cfg.get(key)
        if current is None:
            raise click.exceptions.Exit(1)
        output.echo(str(current))


def _flatten(tree: dict[str, object], prefix: str = "") -> list[tuple[str, object]]:
    items: list[tuple[str, object]] = []
    for k, v in sorted(tree.items()):
        if isinstance(v, dict):
            items.extend(_flatten(v, f"{prefix}{k}."))
        else:
            items.append((f"{prefix}{k}", v))
    return items


COMMANDS = [config]
