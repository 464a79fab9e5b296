"""Comparing revisions: params diff, metrics show/diff, plots diff."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from cairn.cli import output
from cairn.errors import CairnError

if TYPE_CHECKING:
    from cairn.commands.pipeline import Diff, MetricsShown

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


def as_cell(value: Any) -> str:
    """A value already rounded for display (`to_dict(precision)`); null or absent: "-"."""
    return EMPTY if value is None else str(value)


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


def show_diff(diff: Diff, key_title: str, precision: int, as_json: bool, as_md: bool) -> None:
    for why in diff.warnings:
        output.warn(why)
    if as_json:
        output.emit_json(diff.to_dict(precision))
        return
    if not diff.changes:
        click.echo(f"No {key_title.lower()} changes between {diff.old} and {diff.new}.",
                   err=True)
        return
    rows = []
    for change in diff.changes:
        values = change.to_dict(precision)
        rows.append((change.path, change.key, as_cell(values["old"]), as_cell(values["new"]),
                     as_cell(values.get("diff"))))
    render(("Path", key_title, diff.old, diff.new, "Change"), rows, as_md)


def check_formats(as_json: bool, as_md: bool) -> None:
    if as_json and as_md:
        raise click.UsageError("choose one of --json and --md")


def report_unreadable(shown: MetricsShown) -> None:
    """One warning per metrics file a revision lacks or cannot parse; none readable: fail
    with the last of them (the table would be empty). Some readable: DVC's way, a warning
    per unreadable file and the rest shown."""
    problems = shown.problems
    for why in problems[:-1] if shown.none_readable else problems:
        output.warn(why)
    if shown.none_readable:
        raise CairnError(problems[-1])


# -- params -----------------------------------------------------------------------------


@click.group()
def params() -> None:
    """Parameters of the pipeline across revisions."""


@params.command("diff")
@diff_options
def params_diff(a_rev: str | None, b_rev: str | None, all_keys: bool, as_json: bool,
                as_md: bool, precision: int) -> None:
    """Params that differ between revisions A and B (default: HEAD and the workspace)."""
    from cairn.commands import pipeline

    check_formats(as_json, as_md)
    show_diff(pipeline.params_diff(a_rev, b_rev, all_keys=all_keys), "Param", precision,
              as_json, as_md)


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
    from cairn.commands import pipeline

    check_formats(as_json, as_md)
    shown = pipeline.metrics_show(all_tags=all_tags)
    report_unreadable(shown)
    found = shown.to_dict(precision)
    if as_json:
        output.emit_json(found)
        return
    keys = list(dict.fromkeys(k for files in found.values() for values in files.values()
                              for k in values))
    if not keys:
        click.echo("No metrics: declare them under a stage's `metrics:` in cairn.yaml.",
                   err=True)
        return
    several = len(found) > 1
    rows = [([label] if several else []) + [path] + [as_cell(values.get(k)) for k in keys]
            for label, files in found.items() for path, values in files.items()]
    render((["Revision"] if several else []) + ["Path", *keys], rows, as_md)


@metrics.command("diff")
@diff_options
def metrics_diff(a_rev: str | None, b_rev: str | None, all_keys: bool, as_json: bool,
                 as_md: bool, precision: int) -> None:
    """Metrics that differ between revisions A and B (default: HEAD and the workspace)."""
    from cairn.commands import pipeline

    check_formats(as_json, as_md)
    show_diff(pipeline.metrics_diff(a_rev, b_rev, all_keys=all_keys), "Metric", precision,
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

    from cairn.commands import pipeline

    drawn = pipeline.plots_diff(revisions, out=Path(out) if out else None, png=png)
    for why in drawn.warnings:
        output.warn(why)
    for path in drawn.written:
        output.echo(str(path))


COMMANDS: list[click.Command] = [params, metrics, plots]
