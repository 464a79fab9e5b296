"""Comparing revisions: params diff, metrics show/diff, plots diff, get."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

from cairn.cli import output
from cairn.errors import CairnError

if TYPE_CHECKING:
    from cairn.pipeline.compare import Change
    from cairn.pipeline.metrics import RevisionMetrics

DEFAULT_PRECISION = 5  # DVC's: values and changes rounded to 5 decimal places
EMPTY = "-"

md_option = click.option("--md", "as_md", is_flag=True, help="A Markdown table.")
all_option = click.option("--all", "all_keys", is_flag=True,
                          help="Show unchanged values too.")
precision_option = click.option("--precision", type=click.IntRange(0, 15),
                                default=DEFAULT_PRECISION, show_default=True,
                                help="Decimal places for values and changes.")


def diff_options(command: Callable[..., None]) -> Callable[..., None]:
    """The arguments every `… diff` of two revisions takes: [A] [B] --all --json --md
    --precision."""
    for decorate in reversed((
            click.argument("a_rev", required=False, metavar="[A]"),
            click.argument("b_rev", required=False, metavar="[B]"),
            all_option, output.json_option, md_option, precision_option)):
        command = decorate(command)
    return command


def fmt(value: Any, precision: int) -> str:
    from cairn.pipeline.compare import ABSENT

    if value is ABSENT or value is None:
        return EMPTY
    if isinstance(value, float):
        return str(round(value, precision))
    return str(value)


def render(columns: Sequence[str], rows: Sequence[Sequence[str]], as_md: bool) -> None:
    """A Rich table on a terminal; the same columns as plain text or Markdown otherwise."""
    if as_md:
        output.echo("| " + " | ".join(columns) + " |")
        output.echo("|" + "|".join("-" * (len(c) + 2) for c in columns) + "|")
        for row in rows:
            output.echo("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        return
    if sys.stdout.isatty():
        output.table(columns, rows)
        return
    # Not a terminal: the same layout without importing Rich (tens of milliseconds).
    widths = [max(len(str(r[i])) for r in [columns, *rows]) for i in range(len(columns))]
    for row in [columns, *rows]:
        output.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
                    .rstrip())


def show_changes(changes: list[Change], key_title: str, old: str, new: str, precision: int,
                 as_json: bool, as_md: bool) -> None:
    from cairn.pipeline.compare import group

    if as_json:
        output.emit_json(group(changes, precision))
        return
    if not changes:
        click.echo(f"No {key_title.lower()} changes between {old} and {new}.", err=True)
        return
    rows = [(c.path, c.key, fmt(c.old, precision), fmt(c.new, precision),
             fmt(c.delta, precision) if c.delta is not None else EMPTY) for c in changes]
    render(("Path", key_title, old, new, "Change"), rows, as_md)


def check_formats(as_json: bool, as_md: bool) -> None:
    if as_json and as_md:
        raise click.UsageError("choose one of --json and --md")


def warn_unreadable(found: Iterable[RevisionMetrics]) -> None:
    """One warning per metrics file a revision lacks or cannot parse."""
    for rev in found:
        for why in rev.errors.values():
            output.warn(why)


def fail_if_none_readable(found: Sequence[RevisionMetrics]) -> None:
    """Declared metrics files, none readable: say why, and fail (the table would be empty).

    When some are readable, DVC's way: a warning per unreadable file, and the rest shown.
    """
    errors = [why for r in found for why in r.errors.values()]
    if not errors or any(r.metrics for r in found):
        return
    for why in errors[:-1]:
        output.warn(why)
    raise CairnError(errors[-1])


# -- params -----------------------------------------------------------------------------


@click.group()
def params() -> None:
    """Parameters of the pipeline across revisions."""


@params.command("diff")
@diff_options
def params_diff(a_rev: str | None, b_rev: str | None, all_keys: bool, as_json: bool,
                as_md: bool, precision: int) -> None:
    """Params that differ between revisions A and B (default: HEAD and the workspace)."""
    from cairn.pipeline.compare import open_revisions, params_diff

    check_formats(as_json, as_md)
    with open_revisions() as revs:
        old, new, changes = params_diff(revs, a_rev, b_rev, all_keys)
    show_changes(changes, "Param", old.label, new.label, precision, as_json, as_md)


# -- metrics ------------------------------------------------------------------------------


@click.group()
def metrics() -> None:
    """Metrics files of the pipeline across revisions."""


@metrics.command("show")
@click.option("-T", "--all-tags", is_flag=True, help="Also every git tag.")
@output.json_option
@md_option
@precision_option
def metrics_show(all_tags: bool, as_json: bool, as_md: bool, precision: int) -> None:
    """The metrics of the workspace (and with -T, of every tag)."""
    from cairn.pipeline.compare import open_revisions, plain
    from cairn.pipeline.metrics import metrics_show as do_show

    check_formats(as_json, as_md)
    with open_revisions() as revs:
        found = do_show(revs, all_tags=all_tags)
    fail_if_none_readable(found)
    warn_unreadable(found)
    if as_json:
        output.emit_json({r.label: {path: {k: plain(v, precision) for k, v in values.items()}
                                    for path, values in r.metrics.items()} for r in found})
        return
    keys = list(dict.fromkeys(k for r in found for values in r.metrics.values() for k in values))
    if not keys:
        click.echo("No metrics: declare them under a stage's `metrics:` in cairn.yaml.",
                   err=True)
        return
    several = len(found) > 1
    rows = [([r.label] if several else []) + [path] + [fmt(values.get(k), precision)
                                                       for k in keys]
            for r in found for path, values in r.metrics.items()]
    render((["Revision"] if several else []) + ["Path", *keys], rows, as_md)


@metrics.command("diff")
@diff_options
def metrics_diff(a_rev: str | None, b_rev: str | None, all_keys: bool, as_json: bool,
                 as_md: bool, precision: int) -> None:
    """Metrics that differ between revisions A and B (default: HEAD and the workspace)."""
    from cairn.pipeline.compare import open_revisions
    from cairn.pipeline.metrics import metrics_diff as do_diff

    check_formats(as_json, as_md)
    with open_revisions() as revs:
        result = do_diff(revs, a_rev, b_rev, all_keys)
    warn_unreadable((result.old, result.new))
    show_changes(result.changes, "Metric", result.old.label, result.new.label, precision,
                 as_json, as_md)


# -- plots ------------------------------------------------------------------------------


@click.group()
def plots() -> None:
    """Plots files of the pipeline across revisions."""


@plots.command("diff")
@click.argument("revisions", nargs=-1)
@click.option("-o", "--out", type=click.Path(dir_okay=False),
              help="The HTML file to write (default: plots.html).")
@click.option("--png", is_flag=True, help="Also write the charts as a PNG beside it.")
def plots_diff(revisions: tuple[str, ...], out: str | None, png: bool) -> None:
    """Draw the plots of REVISIONS (default: HEAD and the workspace) into one HTML file."""
    from pathlib import Path

    from cairn.pipeline.compare import open_revisions
    from cairn.pipeline.plots import plots_diff as do_diff

    with open_revisions() as revs:
        written, warnings = do_diff(revs, revisions, Path(out) if out else None, png)
    for why in warnings:
        output.warn(why)
    for path in written:
        output.echo(str(path))


COMMANDS: list[click.Command] = [params, metrics, plots]
