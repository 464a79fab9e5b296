"""Pipeline commands: repro, stage add, dag."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
