"""Experiment tracking commands: runs, experiments, db."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
