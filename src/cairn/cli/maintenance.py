"""Maintenance commands: gc, fsck, du."""

from __future__ import annotations

COMMANDS: list[object] = []
