"""What the runs, experiments and models commands share: the client of the tracking
store, and how they show its millisecond timestamps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cairn.cli import output

if TYPE_CHECKING:
    from cairn.registry.client import Client

json_option = output.json_option  # cli/tracking.py imports it from here


def open_client() -> Client:
    """The client of the current tracking URI (imported here: `cairn --help` stays fast)."""
    from cairn.registry.client import Client

    return Client()


def when(ms: int | None) -> str:
    from cairn.registry.history import format_ms

    return format_ms(ms)


def day(ms: int | None) -> str:
    """Short enough for a table column: local date and minute."""
    return when(ms)[:16].replace("T", " ")
