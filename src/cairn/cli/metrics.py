"""Comparing revisions: params diff, metrics show/diff, plots diff, get."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
