"""Pipeline definition commands: `cairn stage add`, `cairn stage list`, `cairn dag`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cairn.cli import output

if TYPE_CHECKING:
    from cairn.pipeline.schema import Stage


@click.group()
def stage() -> None:
    """Declare pipeline stages (in cairn.yaml, or the project's dvc.yaml)."""


@stage.command("add", context_settings={"ignore_unknown_options": True,
                                        "allow_interspersed_args": False})
@click.option("-n", "--name", required=True, help="Stage name.")
@click.option("-d", "--deps", "deps", multiple=True, metavar="DEP", help="A dependency.")
@click.option("-o", "--outs", "outs", multiple=True, metavar="OUT", help="An output, cached.")
@click.option("-O", "--outs-no-cache", multiple=True, metavar="OUT",
              help="An output kept in git, not in the cache.")
@click.option("--outs-persist", multiple=True, metavar="OUT",
              help="An output not deleted before the stage runs.")
@click.option("-p", "--params", "params", multiple=True, metavar="[FILE:]KEY,…",
              help="Params the stage reads (default file params.yaml; FILE: = all its keys).")
@click.option("-m", "--metrics", "metrics", multiple=True, metavar="PATH",
              help="A metrics file, cached.")
@click.option("-M", "--metrics-no-cache", multiple=True, metavar="PATH",
              help="A metrics file kept in git.")
@click.option("--plots", multiple=True, metavar="PATH", help="A plots file, cached.")
@click.option("--plots-no-cache", multiple=True, metavar="PATH", help="A plots file kept in git.")
@click.option("-w", "--wdir", help="Directory the command runs in (relative to the file).")
@click.option("--always-changed", is_flag=True, help="Run the stage on every repro.")
@click.option("--desc", help="A description of the stage.")
@click.option("-f", "--force", is_flag=True, help="Replace a stage of the same name.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def stage_add(name: str, deps: tuple[str, ...], outs: tuple[str, ...],
              outs_no_cache: tuple[str, ...], outs_persist: tuple[str, ...],
              params: tuple[str, ...], metrics: tuple[str, ...],
              metrics_no_cache: tuple[str, ...], plots: tuple[str, ...],
              plots_no_cache: tuple[str, ...], wdir: str | None, always_changed: bool,
              desc: str | None, force: bool, command: tuple[str, ...]) -> None:
    """Add a stage running COMMAND to the pipeline file of the current directory."""
    from cairn.commands import pipeline

    cwd = Path.cwd()
    added = pipeline.stage_add(
        name, command, deps=deps, outs=outs, outs_no_cache=outs_no_cache,
        outs_persist=outs_persist, params=params, metrics=metrics,
        metrics_no_cache=metrics_no_cache, plots=plots, plots_no_cache=plots_no_cache,
        wdir=wdir, always_changed=always_changed, desc=desc, force=force, directory=cwd)
    changed = [os.path.relpath(p, cwd) for p in (added.pipeline_file, *added.ignores)]
    output.echo(f"Added stage '{name}' to {changed[0]}")
    output.echo(f"To track the changes with git, run:\n\n    {output.git_add_command(changed)}")


@stage.command("list")
@output.json_option
def stage_list(as_json: bool) -> None:
    """List the pipeline's stages with their outputs."""
    from cairn.commands import pipeline

    stages = pipeline.stage_list()
    if as_json:
        output.emit_json([{"name": s.name, "file": s.file, "cmd": list(s.cmd),
                           "deps": list(s.deps), "outs": [o.path for o in s.outs],
                           "desc": s.desc} for s in stages])
        return
    width = max((len(s.name) for s in stages), default=0)
    for s in stages:
        output.echo(f"{s.name:<{width}}  {_summary(s)}".rstrip())


def _summary(stage: Stage) -> str:
    """What `dvc stage list` says of a stage: its description, outputs or deps."""
    if stage.desc:
        return stage.desc.splitlines()[0]
    if stage.outs:
        return "Outputs " + ", ".join(o.path for o in stage.outs)
    if stage.deps:
        return "Depends on " + ", ".join(stage.deps)
    return "No outputs or dependencies"


@click.command()
@click.argument("targets", nargs=-1)
@click.option("--mermaid", "fmt", flag_value="mermaid", help="Mermaid flowchart.")
@click.option("--md", "fmt", flag_value="md", help="Mermaid flowchart in a Markdown block.")
@click.option("--dot", "fmt", flag_value="dot", help="Graphviz dot.")
@click.option("--ascii", "fmt", flag_value="ascii", default=True, help="Boxes and lines (default).")
@click.option("--downstream", is_flag=True,
              help="The targets and what depends on them (default: and what they depend on).")
def dag(targets: tuple[str, ...], fmt: str, downstream: bool) -> None:
    """Show the stage graph: all stages, or TARGETS with their upstream stages."""
    from cairn.commands import pipeline

    graph = pipeline.dag(targets, downstream=downstream)
    if not graph.stages:
        output.warn("the pipeline has no stages; add one with `cairn stage add`")
        return
    if fmt == "dot":
        output.echo(graph.to_dot())
    elif fmt in ("mermaid", "md"):
        text = graph.to_mermaid()
        output.echo(f"```mermaid\n{text}\n```" if fmt == "md" else text)
    else:
        output.echo(graph.to_ascii())


COMMANDS: list[click.Command] = [stage, dag]
