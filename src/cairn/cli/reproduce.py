"""`cairn reproduce`: rebuild a registered model version and compare it with the record."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from cairn.cli import output

if TYPE_CHECKING:
    from cairn.lifecycle.reproduce import Reproduction


@click.command()
@click.argument("uri")
@click.option("--keep", is_flag=True,
              help="Keep the scratch worktree (and its tracking database) to inspect.")
@click.option("--metric-tolerance", type=click.FloatRange(min=0), default=None,
              metavar="X", help="Other bytes still pass when every metric is within X of "
                                "the recorded run's.")
@output.json_option
def reproduce(uri: str, keep: bool, metric_tolerance: float | None, as_json: bool) -> None:
    """Rebuild model version URI (models:/NAME/VERSION, @ALIAS or /STAGE) from its
    recorded commit, data and pipeline stage in a scratch git worktree, and compare.

    Exit 0 when the rebuilt artifact has the recorded digest, or differs with every
    metric within --metric-tolerance; exit 1 when it differs. The outcome is recorded in
    the version's audit log.
    """
    from cairn.commands import reproduce as commands

    done = commands.reproduce(uri=uri, keep=keep, metric_tolerance=metric_tolerance,
                              say=_step, command_stdout=2 if as_json else None)
    if as_json:
        output.emit_json(done.to_dict())
    else:
        _show(done)
    if not done.passed:
        sys.exit(1)


def _step(message: str) -> None:
    click.echo(message, err=True)  # stdout is the report's (and --json's)


def _show(done: Reproduction) -> None:
    how = f"stage '{done.stage}'" if done.stage else "its entry point"
    rows = [("model", f"{done.uri} ({done.name} v{done.version})"),
            ("commit", done.commit), ("rebuilt by", f"{how}: {done.shown_command}"),
            ("recorded digest", done.recorded_digest[:16]),
            ("rebuilt digest", done.rebuilt_digest[:16])]
    if done.differing_files:
        rows.append(("files differing", ", ".join(done.differing_files)))
    if done.kept:
        rows.append(("kept in", done.kept))
    output.table(["", ""], rows)
    if done.status != "match":
        output.echo()
        output.table(["metric", "recorded", "rebuilt", "delta"],
                     [(d.metric, _number(d.recorded), _number(d.rebuilt), _delta(d.delta))
                      for d in done.deltas] or [("(none logged)", "-", "-", "-")])
    output.echo()
    output.echo(_verdict(done))


def _verdict(done: Reproduction) -> str:
    if done.status == "match":
        return "Reproduced: same digest."
    if done.status == "within_tolerance":
        return (f"Reproduced within tolerance {done.tolerance:g}: other bytes, every metric "
                "within it.")
    if done.tolerance is None:
        return "Not reproduced: other bytes (give --metric-tolerance to accept metric deltas)."
    return f"Not reproduced: other bytes, and metrics beyond {done.tolerance:g} (or missing)."


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _delta(value: float | None) -> str:
    return "-" if value is None else f"{value:+.6g}"


COMMANDS: list[click.Command] = [reproduce]
