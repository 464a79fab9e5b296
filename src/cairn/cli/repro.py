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
    from cairn.pipeline.repro import StageFailedError, lock_files_changed
    from cairn.pipeline.repro import repro as do_repro
    from cairn.project.context import open_project

    def say(result: StageResult) -> None:
        output.echo(result.line)

    with open_project() as project:
        try:
            results = do_repro(project, stages, force, dry, downstream, jobs,
                               report=None if as_json else say,
                               command_stdout=2 if as_json else None, pull=pull,
                               remote=remote)
        except StageFailedError as e:
            if as_json:
                output.emit_json([r.to_dict() for r in e.results])
            raise
        in_git = project.git is not None
    if as_json:
        output.emit_json([r.to_dict() for r in results])
        return
    changed = lock_files_changed(results)
    if changed and in_git:
        files = [os.path.relpath(project.root / f) for f in changed]
        output.echo(f"\nTo track the changes with git, run:\n\n    {output.git_add_command(files)}")


COMMANDS: list[click.Command] = [repro]
