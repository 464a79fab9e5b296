"""One place that writes to the terminal: messages, tables, JSON, progress bars."""

from __future__ import annotations

import json
import math
import re
import shlex
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
Command = TypeVar("Command", bound=Callable[..., Any])


def json_option(command: Command) -> Command:
    """The `--json` flag of every command that can print JSON (its parameter: `as_json`)."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Machine-readable output.")(command)


def git_add_command(paths: list[str]) -> str:
    """`git add` of exactly `paths`, to paste into a shell: each quoted for it, and one
    that git would read as a glob or as `:` magic given as `:(literal)PATH`."""
    specs = [f":(literal){p}" if p.startswith(":") or _GLOB.search(p) else p for p in paths]
    end_of_options = ["--"] if any(p.startswith("-") for p in specs) else []
    return shlex.join(["git", "add", *end_of_options, *specs])


_GLOB = re.compile(r"[*?\[\\]")


def echo(message: str = "") -> None:
    click.echo(message)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(_finite(data), indent=2, sort_keys=True, default=str))


def _finite(data: Any) -> Any:
    """NaN and ±Infinity (a metric may be either) are not JSON: they print as null."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None,
          no_wrap: Sequence[int] = ()) -> None:
    """Rows under their column names; the columns `no_wrap` indexes stay on one line."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for i, column in enumerate(columns):
        t.add_column(column, no_wrap=i in no_wrap)
    for row in rows:  # cells are data, never Rich markup: "[x]" in a reason stays
        t.add_row(*(escape(str(c)) for c in row))
    Console(soft_wrap=True).print(t)


def human_size(n: int) -> str:
    """`n` bytes for people: "512 B", "1.5 KiB", … "2.0 PiB"."""
    size = float(n)
    for unit in SIZE_UNITS:
        if size < 1024 or unit == SIZE_UNITS[-1]:
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


class ProgressBar:
    """What `progress()` yields: call it to advance by n; `add_total(n)` when n more are
    known to come. Without a Rich bar (not a terminal) both do nothing."""

    def __init__(self, bar: RichProgress | None = None, task: TaskID | None = None,
                 total: int | None = None) -> None:
        self._bar, self._task, self._total = bar, task, total
        self._lock = threading.Lock()  # transfers advance from worker threads

    def __call__(self, n: int) -> None:
        if self._bar is not None and self._task is not None:
            with self._lock:
                self._bar.advance(self._task, n)

    def add_total(self, n: int) -> None:
        if self._bar is not None and self._task is not None:
            with self._lock:
                self._total = (self._total or 0) + n
                self._bar.update(self._task, total=self._total)


@contextmanager
def progress(description: str, total: int | None = None, unit: str = "files"
             ) -> Iterator[ProgressBar]:
    """A Rich progress bar on a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        yield ProgressBar()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(description, BarColumn(), MofNCompleteColumn(), unit, TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        yield ProgressBar(bar, bar.add_task(description, total=total), total)
