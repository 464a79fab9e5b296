"""Model registry commands: models list/show/versions/register/promote/alias/history/lineage."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
