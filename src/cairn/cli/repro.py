"""`cairn repro`: run the stages whose inputs changed."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from cairn.cli import output

if TYPE_CHECKING:
    from cairn.pipeline.repro import StageResult


@click.command()
@click.argument("stages", nargs=-1)
@click.option("-f", "--force", is_flag=True, help="Run the stages even if nothing changed.")
@click.option("--dry", is_flag=True, help="Only say which stages would run; change nothing.")
@click.option("--downstream", is_flag=True,
              help="Also the stages that depend on STAGE (and not those STAGE depends on).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Stages to run at once (independent stages only).")
@click.option("--pull", is_flag=True,
              help="Also look for stages' results in the remote's run cache before running.")
@click.option("-r", "--remote", help="Remote for --pull (default: core.remote).")
@output.json_option
def repro(stages: tuple[str, ...], force: bool, dry: bool, downstream: bool, jobs: int,
          pull: bool, remote: str | None, as_json: bool) -> None:
    """Run, in dependency order, only the stages whose cmd, deps, params or outs changed.

    With --json, the outcome of each stage is printed as JSON and the commands' own
    output goes to stderr.
    """
    from cairn.commands import pipeline

    def say(result: StageResult) -> None:
        output.echo(result.line)

    result = pipeline.repro(stages, force=force, dry=dry, downstream=downstream, jobs=jobs,
                            pull=pull, remote=remote, report=None if as_json else say,
                            command_stdout=2 if as_json else None)
    if as_json:
        output.emit_json([r.to_dict() for r in result.stages])
    result.raise_for_failure()
    if result.lock_files and result.in_git and not as_json:  # JSON: stdout is the results
        files = [os.path.relpath(f) for f in result.lock_files]
        output.echo(f"\nTo track the changes with git, run:\n\n    {output.git_add_command(files)}")


COMMANDS: list[click.Command] = [repro]
