"""What the runs, experiments and models commands share: how they show the store's
millisecond timestamps."""

from __future__ import annotations

from datetime import datetime

from cairn.cli import output

json_option = output.json_option  # cli/tracking.py imports it from here


def when(ms: int | None) -> str:
    """Local time to the second, ISO 8601; empty for none."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="seconds")


def day(ms: int | None) -> str:
    """Short enough for a table column: local date and minute."""
    return when(ms)[:16].replace("T", " ")
