"""Workspace commands: init, add, status, commit, checkout, unprotect, hooks."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cairn.cli import output
from cairn.errors import CairnError

if TYPE_CHECKING:
    from cairn.pipeline.repro import StageResult
    from cairn.project.context import ProjectContext
    from cairn.workspace.status import OutStatus


@click.command()
@click.option("--no-scm", is_flag=True, help="Use Cairn in a directory without git.")
@click.option("--no-hooks", is_flag=True, help="Do not install git hooks.")
def init(no_scm: bool, no_hooks: bool) -> None:
    """Make the current directory a Cairn repository."""
    from cairn.workspace.init import init as do_init

    result = do_init(Path.cwd(), no_scm=no_scm, hooks=not no_hooks)
    verb = "Initialized" if result.created else "Reinitialized existing"
    output.echo(f"{verb} Cairn repository in {result.root / '.cairn'}")
    for name in result.hooks_skipped:
        output.warn(f"left your own .git/hooks/{name} alone; call `cairn git-hook {name}` from it")
    if result.created and result.git:
        output.echo("Commit it: git add .cairn && git commit -m 'Initialize Cairn'")


@click.command()
@click.argument("paths", nargs=-1, required=True)
def add(paths: tuple[str, ...]) -> None:
    """Track files or directories: store them in the cache, write PATH.cairn."""
    from cairn.project.context import open_project
    from cairn.workspace.add import add as do_add

    with open_project() as project, output.progress("Adding") as advance:
        result = do_add(project, paths, advance)
    to_add = result.to_git_add(Path.cwd())
    if result.staged:
        output.echo(f"Staged in git: {shlex.join(to_add)}")
    elif project.git is not None:
        output.echo(f"To track the changes with git, run:\n\n    {output.git_add_command(to_add)}")


@click.command()
@click.argument("targets", nargs=-1)
@click.option("-c", "--cloud", is_flag=True, help="Compare the cache with a remote instead.")
@click.option("-r", "--remote", help="Remote to compare with (default: core.remote).")
@click.option("-j", "--jobs", type=int, help="Parallel requests to the remote.")
@output.json_option
def status(targets: tuple[str, ...], cloud: bool, remote: str | None, jobs: int | None,
           as_json: bool) -> None:
    """Show tracked outputs that differ from their pointer files or cairn.lock, and
    pipeline stages that `cairn repro` would run (or compare the cache with a remote)."""
    from cairn.project.context import open_project

    if cloud or remote:
        from cairn.cli.transfer import show_cloud_status

        show_cloud_status(targets, remote, jobs, as_json)
        return
    from cairn.workspace.status import status as do_status

    with open_project() as project:
        changed = [s for s in do_status(project, targets) if s.state != "unchanged"]
        stages, unreadable = ([], None) if targets else _stages_to_run(project)
    if as_json:
        report = {s.path: s.to_dict() for s in changed}
        report.update({r.stage: {"stage": r.stage, "state": "changed", "reasons": r.reasons}
                       for r in stages})
        output.emit_json(report)
    else:
        _print_status(changed, stages, pipeline_read=unreadable is None)
    if unreadable is not None:
        raise unreadable  # after the data status, which it does not make less true


def _print_status(changed: list[OutStatus], stages: list[StageResult],
                  pipeline_read: bool) -> None:
    if not changed and not stages:
        output.echo("Data and pipelines are up to date." if pipeline_read else
                    "Tracked data is unchanged.")
    for s in changed:
        counts = ", ".join(f"{len(v)} {k}" for k, v in s.changes.items() if v)
        output.echo(f"\t{s.state + ':':<14}{s.path}" + (f"  ({counts})" if counts else ""))
    for r in stages:
        output.echo(f"\t{'changed stage:':<14}{r.stage}  ({'; '.join(r.reasons)})")


def _stages_to_run(project: ProjectContext) -> tuple[list[StageResult], CairnError | None]:
    """The stages repro would run; or, for a pipeline that cannot be read, the error (as
    repro reports it), raised once the data status has been shown."""
    from cairn.pipeline.repro import stages_to_run

    try:
        return stages_to_run(project), None
    except CairnError as e:
        return [], e


@click.command()
@click.argument("targets", nargs=-1)
def commit(targets: tuple[str, ...]) -> None:
    """Record the current content of tracked outputs in their pointer files."""
    from cairn.project.context import open_project
    from cairn.workspace.add import commit as do_commit

    with open_project() as project:
        changed = do_commit(project, targets)
    for path in changed:
        output.echo(f"Updated {os.path.relpath(path)}")
    if not changed:
        output.echo("Nothing to commit.")


@click.command()
@click.argument("targets", nargs=-1)
@click.option("-f", "--force", is_flag=True, help="Discard uncommitted workspace changes.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing when all is well.")
@click.option("--verify", is_flag=True,
              help="Re-hash every cache object and workspace file; trust no stat cache.")
def checkout(targets: tuple[str, ...], force: bool, quiet: bool, verify: bool) -> None:
    """Make the workspace match the pointer files (e.g. after `git checkout`)."""
    from cairn.project.context import open_project
    from cairn.workspace.checkout import checkout as do_checkout

    with open_project() as project, output.progress("Checking out") as advance:
        result = do_checkout(project, targets, force, advance, verify=verify)
    if not quiet:
        for path in result.changed:
            output.echo(f"M\t{path}")
        for path in result.removed:
            output.echo(f"D\t{path}")
    result.raise_for_problems()


@click.command()
@click.argument("paths", nargs=-1, required=True)
def unprotect(paths: tuple[str, ...]) -> None:
    """Turn linked workspace files into private writable copies, to edit them."""
    from cairn.project.context import open_project
    from cairn.workspace.protect import unprotect as do_unprotect

    with open_project() as project:
        for rel in do_unprotect(project, paths):
            output.echo(f"Unprotected {rel}")


@click.command("install-hooks")
def install_hooks() -> None:
    """Install the git hooks (post-checkout, post-merge, pre-push)."""
    from cairn.project.context import ProjectContext
    from cairn.scm.hooks import install_hooks as do_install

    repo = ProjectContext.find()
    if repo.git_root is None:
        raise click.UsageError("not in a git repository")
    for name in do_install(repo.git_root):
        output.warn(f"left your own .git/hooks/{name} alone; call `cairn git-hook {name}` from it")


@click.command("git-hook", hidden=True)
@click.argument("name")
@click.argument("args", nargs=-1)
def git_hook(name: str, args: tuple[str, ...]) -> None:
    """Run by the installed git hooks."""
    from cairn.workspace.hooks import run_hook

    lines = _pre_push(list(args)) if name == "pre-push" else run_hook(name, list(args))
    for line in lines:
        output.echo(line)


def _pre_push(args: list[str]) -> list[str]:
    """The pre-push hook, with what the model registry references (the workspace layer
    cannot ask the registry itself)."""
    import sys

    from cairn.cli.transfer import registry_objects
    from cairn.project.context import open_project
    from cairn.workspace.hooks import pushed_commits
    from cairn.workspace.sync import push_for_git

    with open_project() as project:
        commits = pushed_commits(sys.stdin, project.git, args[0] if args else None)
        if not project.config.get("core.remote"):
            return push_for_git(project, commits)
        return push_for_git(project, commits, also=registry_objects(project))


COMMANDS = [init, add, status, commit, checkout, unprotect, install_hooks, git_hook]
