"""`cairn repro`: run the stages whose inputs changed."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
