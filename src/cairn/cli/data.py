"""Workspace commands: init, add, status, commit, checkout, unprotect, get, hooks."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cairn.cli import output

if TYPE_CHECKING:
    from cairn.commands.data import StageChange
    from cairn.workspace.status import OutStatus


@click.command()
@click.option("--no-scm", is_flag=True, help="Use Cairn in a directory without git.")
@click.option("--no-hooks", is_flag=True, help="Do not install git hooks.")
def init(no_scm: bool, no_hooks: bool) -> None:
    """Make the current directory a Cairn repository."""
    from cairn.commands import data

    result = data.init(Path.cwd(), no_scm=no_scm, hooks=not no_hooks)
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
    from cairn.commands import data

    with output.progress("Adding") as advance:
        result = data.add(paths, progress=advance)
    to_add = result.to_git_add(Path.cwd())
    if result.staged:
        output.echo(f"Staged in git: {shlex.join(to_add)}")
    elif result.in_git:
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
    if cloud or remote:
        from cairn.cli.transfer import show_cloud_status

        show_cloud_status(targets, remote, jobs, as_json)
        return
    from cairn.commands import data

    result = data.status(targets)
    if as_json:
        report = {s.path: s.to_dict() for s in result.changed}
        report.update({r.stage: {"stage": r.stage, "state": "changed", "reasons": r.reasons}
                       for r in result.stages})
        output.emit_json(report)
    else:
        _print_status(result.changed, result.stages,
                      pipeline_read=result.pipeline_error is None)
    if result.pipeline_error is not None:
        raise result.pipeline_error  # after the data status, which it does not make less true


def _print_status(changed: list[OutStatus], stages: list[StageChange],
                  pipeline_read: bool) -> None:
    if not changed and not stages:
        output.echo("Data and pipelines are up to date." if pipeline_read else
                    "Tracked data is unchanged.")
    for s in changed:
        counts = ", ".join(f"{len(v)} {k}" for k, v in s.changes.items() if v)
        output.echo(f"\t{s.state + ':':<14}{s.path}" + (f"  ({counts})" if counts else ""))
    for r in stages:
        output.echo(f"\t{'changed stage:':<14}{r.stage}  ({'; '.join(r.reasons)})")


@click.command()
@click.argument("targets", nargs=-1)
def commit(targets: tuple[str, ...]) -> None:
    """Record the current content of tracked outputs in their pointer files."""
    from cairn.commands import data

    changed = data.commit(targets)
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
    from cairn.commands import data

    with output.progress("Checking out") as advance:
        result = data.checkout(targets, force=force, verify=verify, progress=advance)
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
    from cairn.commands import data

    for rel in data.unprotect(paths):
        output.echo(f"Unprotected {rel}")


@click.command("install-hooks")
def install_hooks() -> None:
    """Install the git hooks (post-checkout, post-merge, pre-push)."""
    from cairn.commands import data

    for name in data.install_hooks():
        output.warn(f"left your own .git/hooks/{name} alone; call `cairn git-hook {name}` from it")


@click.command("git-hook", hidden=True)
@click.argument("name")
@click.argument("args", nargs=-1)
def git_hook(name: str, args: tuple[str, ...]) -> None:
    """Run by the installed git hooks."""
    import sys

    from cairn.commands.hooks import run_hook

    for line in run_hook(name, list(args), sys.stdin):
        output.echo(line)


@click.command()
@click.argument("repo")
@click.argument("path")
@click.option("--rev", help="Git revision (default: the workspace's pointer files, or HEAD "
                            "of a cloned URL).")
@click.option("-o", "--out", help="Where to write it (default: its name, here).")
@click.option("-r", "--remote", help="Remote to read from if no cache has it "
                                     "(default: the repository's default remote).")
@click.option("-f", "--force", is_flag=True, help="Replace OUT if it exists.")
def get(repo: str, path: str, rev: str | None, out: str | None, remote: str | None,
        force: bool) -> None:
    """Copy PATH, tracked in REPO ("." here, a path or a git URL), as of any revision."""
    from cairn.commands import data

    result = data.get(repo, path, rev=rev, out=out, remote=remote, force=force)
    files = f"{result.files} files, " if result.files != 1 else ""
    output.echo(f"Wrote {result.path} ({files}{output.human_size(result.size)})")


COMMANDS = [init, add, status, commit, checkout, unprotect, get, install_hooks, git_hook]
