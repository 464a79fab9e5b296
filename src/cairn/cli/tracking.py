"""Experiment tracking commands: runs, experiments, db."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from cairn.cli import output
from cairn.cli._client import day, json_option, when

if TYPE_CHECKING:
    from cairn.store.entities import Experiment, Run


# -- runs and experiments ---------------------------------------------------------------


def _run_json(run: Run) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(run)


@click.group()
def runs() -> None:
    """Tracked runs: list, show, compare, delete, restore."""


@runs.command("list")
@click.option("-e", "--experiment", "experiment_names", multiple=True,
              help="Only runs of this experiment (by name; repeatable). Default: all.")
@click.option("--filter", "filter_string", default="",
              help="MLflow filter, e.g. \"metrics.f1 > 0.9 AND params.lr = '0.01'\".")
@click.option("--order-by", multiple=True, help="E.g. 'metrics.f1 DESC' (repeatable).")
@click.option("--max", "max_results", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--deleted", is_flag=True, help="Show deleted runs instead.")
@json_option
def runs_list(experiment_names: tuple[str, ...], filter_string: str, order_by: tuple[str, ...],
              max_results: int, deleted: bool, as_json: bool) -> None:
    """List runs, newest first (or as --order-by says)."""
    from cairn.commands import runs as commands

    found = commands.list_runs(experiments=experiment_names, filter_string=filter_string,
                               order_by=order_by, max_results=max_results, deleted=deleted)
    if as_json:
        output.emit_json([_run_json(r) for r in found.runs])
        return
    if not found.runs:
        output.echo("No runs.")
        return
    by_experiment: dict[str, list[Run]] = {}
    for r in found.runs:  # one table per experiment keeps the full run ids on a narrow terminal
        by_experiment.setdefault(r.info.experiment_id, []).append(r)
    for experiment_id, group in by_experiment.items():
        output.table(["run id", "status", "started", "name"],
                     [(r.info.run_id, r.info.status, day(r.info.start_time), r.info.run_name)
                      for r in group],
                     title=f"experiment {found.experiments[experiment_id].name!r}")


@runs.command("show")
@click.argument("run_id")
@json_option
def runs_show(run_id: str, as_json: bool) -> None:
    """A run's info, params, metrics, tags, lineage and artifacts."""
    from cairn.commands import runs as commands

    details = commands.show_run(run_id)
    if as_json:
        output.emit_json(details)
        return
    info = details["info"]
    output.echo(f"Run {info['run_id']} ({info['run_name']}) in experiment "
                f"{details['experiment']!r}: {info['status']}, started "
                f"{when(info['start_time'])}" +
                (f", ended {when(info['end_time'])}" if info["end_time"] else ""))
    for title in ("params", "metrics", "tags", "lineage"):
        rows = sorted(details[title].items())
        if rows:
            output.table([title, "value"], [(k, _short(v)) for k, v in rows])
    if details["artifacts"]:
        output.table(["artifact", "size", "digest"],
                     [(a["path"] + ("/" if a["is_dir"] else ""), output.human_size(a["size"]),
                       a["digest"][:16]) for a in details["artifacts"]])


def _short(value: object, width: int = 100) -> str:
    text = str(value)
    return text if len(text) <= width else text[:width - 1] + "…"


@runs.command("compare")
@click.argument("run_ids", nargs=-1, required=True)
@json_option
def runs_compare(run_ids: tuple[str, ...], as_json: bool) -> None:
    """Params and metrics of several runs side by side (differences marked with *)."""
    from cairn.commands import runs as commands

    table = commands.compare_runs(run_ids)
    if as_json:
        output.emit_json(table)
        return
    header = ["", *(f"{r['run_name']} {r['run_id'][:8]}" for r in table["runs"])]
    rows = []
    for kind in ("params", "metrics"):
        for key, values in table[kind].items():
            differs = len({str(v) for v in values}) > 1
            rows.append((f"{'*' if differs else ' '} {kind[:-1]} {key}",
                         *("-" if v is None else _short(v, 30) for v in values)))
    output.table(header, rows)


@runs.command("delete")
@click.argument("run_id")
@json_option
def runs_delete(run_id: str, as_json: bool) -> None:
    """Mark a run deleted (restore it with `cairn runs restore`)."""
    from cairn.commands import runs as commands

    commands.delete_run(run_id)
    _done(as_json, {"run_id": run_id, "lifecycle_stage": "deleted"}, f"Deleted run {run_id}.")


@runs.command("restore")
@click.argument("run_id")
@json_option
def runs_restore(run_id: str, as_json: bool) -> None:
    """Bring back a deleted run."""
    from cairn.commands import runs as commands

    commands.restore_run(run_id)
    _done(as_json, {"run_id": run_id, "lifecycle_stage": "active"}, f"Restored run {run_id}.")


def _done(as_json: bool, data: dict[str, Any], message: str) -> None:
    if as_json:
        output.emit_json(data)
    else:
        output.echo(message)


@click.group()
def experiments() -> None:
    """Experiments: list and create."""


def _experiment_json(e: Experiment) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(e)


@experiments.command("list")
@click.option("--deleted", is_flag=True, help="Show deleted experiments instead.")
@json_option
def experiments_list(deleted: bool, as_json: bool) -> None:
    """List experiments."""
    from cairn.commands import runs as commands

    found = commands.list_experiments(deleted=deleted)
    if as_json:
        output.emit_json([_experiment_json(e) for e in found])
        return
    output.table(["id", "name", "created"],
                 [(e.experiment_id, e.name, when(e.creation_time)) for e in found])


@experiments.command("create")
@click.argument("name")
@json_option
def experiments_create(name: str, as_json: bool) -> None:
    """Create an experiment called NAME."""
    from cairn.commands import runs as commands

    experiment_id = commands.create_experiment(name)
    if as_json:
        output.emit_json({"experiment_id": experiment_id, "name": name})
        return
    output.echo(f"Created experiment {name!r} with id {experiment_id}.")


# -- db: schema migrations of the metadata database -------------------------------------


@click.group()
def db() -> None:
    """The metadata database: schema revision and upgrades."""


@db.command("upgrade")
@click.argument("uri", required=False)
def db_upgrade(uri: str | None) -> None:
    """Upgrade the database at URI to the newest schema (back it up first).

    URI: sqlite:///PATH, a file path or postgresql://USER@HOST/DB; default: the
    current tracking URI."""
    from cairn.commands import runs as commands

    done = commands.db_upgrade(uri)
    if done.up_to_date:
        output.echo(f"{done.uri}: already at revision {done.head}")
    else:
        output.echo(f"{done.uri}: upgraded from revision {done.revision or '(empty)'} to "
                    f"{done.head}")


@db.command("current")
@click.argument("uri", required=False)
@json_option
def db_current(uri: str | None, as_json: bool) -> None:
    """Show the database's schema revision and the newest this Cairn knows.

    URI: as for `cairn db upgrade`; default: the current tracking URI."""
    from cairn.commands import runs as commands

    found = commands.db_current(uri)
    if as_json:
        output.emit_json({"uri": found.uri, "revision": found.revision, "head": found.head,
                          "up_to_date": found.up_to_date})
        return
    state = "up to date" if found.up_to_date else f"run `cairn db upgrade {found.uri}`"
    output.echo(f"{found.uri}: revision {found.revision or '(empty)'}, newest {found.head} "
                f"({state})")


COMMANDS: list[click.Command] = [runs, experiments, db]
