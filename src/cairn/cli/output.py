"""One place that writes to the terminal: messages, tables, JSON, progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click


def echo(message: str = "") -> None:
    click.echo(message)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(*columns, title=title, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        t.add_row(*(str(c) for c in row))
    Console(soft_wrap=True).print(t)


@contextmanager
def progress(description: str, total: int | None = None, unit: str = "files"
             ) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on a terminal; silent otherwise. Yields `advance(n)`."""
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(description, BarColumn(), MofNCompleteColumn(), unit, TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        lock = __import__("threading").Lock()

        def advance(n: int) -> None:
            with lock:
                bar.advance(task, n)

        yield advance
