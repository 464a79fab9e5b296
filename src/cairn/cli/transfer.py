"""Remote commands: remote add/list/modify/remove/default, push, fetch, pull, status --cloud."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from cairn.cli import output

if TYPE_CHECKING:
    from cairn.objects.transfer import TransferResult
    from cairn.pipeline.runcache_remote import RunCacheTransfer
    from cairn.workspace.sync import CloudOutStatus

MAX_LISTED = 10  # failures listed one per line before the summary error


def _level_options(default: str | None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option("--global", "level", flag_value="global",
                         help="Write ~/.config/cairn/config.toml.")(f)
        f = click.option("--local", "level", flag_value="local",
                         help="Write .cairn/config.local.toml (not committed: credentials).")(f)
        return click.option("--repo", "level", flag_value="repo",
                            default=True if default == "repo" else None, hidden=True)(f)
    return decorate


@click.group("remote")
def remote() -> None:
    """Manage remotes: where `push` sends objects and `pull` gets them."""


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option("-d", "--default", "make_default", is_flag=True,
              help="Also make it the default remote.")
@click.option("-f", "--force", is_flag=True, help="Replace a remote of the same name.")
@_level_options("repo")
def remote_add(name: str, url: str, make_default: bool, force: bool, level: str) -> None:
    """Add remote NAME at URL: a path, s3://, gs://, azure://, ssh:// or http(s)://."""
    from cairn.commands import settings

    settings.remote_add(name, url, default=make_default, force=force, level=level)
    if make_default:
        output.echo(f"Setting '{name}' as a default remote.")


@remote.command("list")
def remote_list() -> None:
    """Show remotes and their URLs."""
    from cairn.commands import settings

    for info in settings.remote_list():
        output.echo(f"{info.name}\t{info.url}" + ("\t(default)" if info.default else ""))


@remote.command("modify")
@click.argument("name")
@click.argument("option")
@click.argument("value", required=False)
@click.option("--unset", is_flag=True, help="Remove OPTION instead of setting it.")
@_level_options("repo")
def remote_modify(name: str, option: str, value: str | None, unset: bool, level: str) -> None:
    """Set OPTION of remote NAME (url, endpoint_url, region, profile, key, secret, jobs…)."""
    from cairn.commands import settings

    settings.remote_modify(name, option, value, unset=unset, level=level)


@remote.command("remove")
@click.argument("name")
@_level_options(None)
def remote_remove(name: str, level: str | None) -> None:
    """Remove remote NAME (from every config file, unless one is named)."""
    from cairn.commands import settings

    settings.remote_remove(name, level=level)


@remote.command("default")
@click.argument("name", required=False)
@click.option("--unset", is_flag=True, help="Have no default remote.")
@_level_options("repo")
def remote_default(name: str | None, unset: bool, level: str) -> None:
    """Show the default remote, or make NAME the default."""
    from cairn.commands import settings
    from cairn.errors import NotFoundError

    current = settings.remote_default(name, unset=unset, level=level)
    if name is None and not unset:
        if current is None:
            raise NotFoundError("no default remote; set one with `cairn remote default NAME`")
        output.echo(current)


def _scope_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.argument("targets", nargs=-1),
        click.option("-r", "--remote", help="Remote to use (default: core.remote)."),
        click.option("-j", "--jobs", type=click.IntRange(min=1),
                     help="Parallel transfers (default: remote.NAME.jobs, core.jobs, 8)."),
        click.option("--rev", "revs", multiple=True, metavar="REV",
                     help="Also the data of git revision REV (repeatable)."),
        click.option("-T", "--all-tags", is_flag=True, help="Also the data of every git tag."),
        click.option("-a", "--all-branches", is_flag=True,
                     help="Also the data of every git branch."),
        click.option("-A", "--all-commits", is_flag=True,
                     help="Also the data of every git commit."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


_run_cache_option = click.option(
    "--run-cache", is_flag=True,
    help="Also the run cache: results of past stage runs, and the objects they name.")


@click.command()
@_scope_options
@_run_cache_option
def push(targets: tuple[str, ...], remote: str | None, jobs: int | None, revs: tuple[str, ...],
         all_tags: bool, all_branches: bool, all_commits: bool, run_cache: bool) -> None:
    """Upload tracked data (pointer files, cairn.lock outs) that the remote lacks; without
    TARGETS, also the registered models and run artifacts the tracking database names."""
    from cairn.commands import data

    with output.progress("Pushing", unit="files") as bar:
        result = data.push(targets, remote=remote, jobs=jobs, revs=revs, all_tags=all_tags,
                           all_branches=all_branches, all_commits=all_commits,
                           run_cache=run_cache, progress=bar, on_total=bar.add_total)
    for warning in result.warnings:
        output.warn(warning)
    if result.run_cache is not None:
        _report_run_cache(result.run_cache, "pushed")
    _report_repairs(result.transferred, result.remote)
    _report(result.transferred, "pushed")


def _report_repairs(result: TransferResult, name: str) -> None:
    """What push did about objects known to be corrupt on the remote."""
    if result.replaced:
        output.echo(f"Replaced {_count(len(result.replaced), 'corrupt object')} on remote "
                    f"{name!r} with good copies from this cache.")
    if result.unrepaired:
        output.warn(f"{_count(len(result.unrepaired), 'corrupt object')} on remote "
                    f"{name!r} that this cache lacks (e.g. {result.unrepaired[0]}); run "
                    f"`cairn fsck -r {name}` then `cairn push -r {name}` in a clone whose "
                    "cache has good copies")


@click.command()
@_scope_options
@_run_cache_option
def fetch(targets: tuple[str, ...], remote: str | None, jobs: int | None,
          revs: tuple[str, ...], all_tags: bool, all_branches: bool, all_commits: bool,
          run_cache: bool) -> None:
    """Download tracked data into the cache, without touching the workspace."""
    from cairn.commands import data

    with output.progress("Fetching", unit="files") as bar:
        result = data.fetch(targets, remote=remote, jobs=jobs, revs=revs, all_tags=all_tags,
                            all_branches=all_branches, all_commits=all_commits,
                            run_cache=run_cache, progress=bar, on_total=bar.add_total)
    if result.run_cache is not None:
        _report_run_cache(result.run_cache, "fetched")
    _report(result.transferred, "fetched")


@click.command()
@_scope_options
@click.option("-f", "--force", is_flag=True, help="Discard uncommitted workspace changes.")
@_run_cache_option
def pull(targets: tuple[str, ...], remote: str | None, jobs: int | None, revs: tuple[str, ...],
         all_tags: bool, all_branches: bool, all_commits: bool, force: bool,
         run_cache: bool) -> None:
    """Fetch tracked data, then make the workspace match the pointer files and cairn.lock."""
    from cairn.commands import data

    with output.progress("Pulling", unit="files") as bar:
        result = data.pull(targets, remote=remote, jobs=jobs, revs=revs, all_tags=all_tags,
                           all_branches=all_branches, all_commits=all_commits, force=force,
                           run_cache=run_cache, progress=bar, on_total=bar.add_total)
    if result.fetched.run_cache is not None:
        _report_run_cache(result.fetched.run_cache, "fetched")
    for path in result.checkout.changed:
        output.echo(f"M\t{path}")
    for path in result.checkout.removed:
        output.echo(f"D\t{path}")
    _report(result.fetched.transferred, "fetched", updated=len(result.checkout.changed))
    result.checkout.raise_for_problems()


def _report_run_cache(result: RunCacheTransfer, verb: str) -> None:
    """`--run-cache`: one line saying how many entries moved."""
    count = len(result.entries)
    output.echo(f"{_count(count, 'run-cache entry').replace('entrys', 'entries')} {verb}")
    for key in result.invalid:
        output.warn(f"ignored run-cache entry {key} on the remote: it does not match its name")
    result.objects.raise_for_failures(verb)


def _report(result: TransferResult, verb: str, updated: int = 0) -> None:
    """"N files pushed" or "Everything is up to date."; failures as one error at the end."""
    moved = len(result.transferred)
    if moved or updated:
        parts = [_count(moved, "file") + f" {verb}"] if moved or not updated else []
        parts += [_count(updated, "path") + " updated"] if updated else []
        output.echo(" and ".join(parts))
    elif not result.failed:
        output.echo("Everything is up to date.")
    if len(result.failed) > 1:
        for error in list(result.failed.values())[:MAX_LISTED]:
            output.warn(str(error))
    result.raise_for_failures(verb)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def show_cloud_status(targets: tuple[str, ...], remote: str | None, jobs: int | None,
                      as_json: bool) -> None:
    """`cairn status --cloud`: tracked outs whose objects the remote lacks."""
    from cairn.commands import data

    status = data.cloud_status(targets, remote=remote, jobs=jobs)
    if as_json:
        output.emit_json({o.path: o.to_dict() for o in status.outs})
        return
    if status.in_sync:
        output.echo(f"Cache and remote '{status.remote}' are in sync.")
        return
    for out in status.outs:
        if out.state != "in sync":
            output.echo(f"\t{out.state + ':':<14}{out.path}  ({_cloud_detail(out)})")


def _cloud_detail(out: CloudOutStatus) -> str:
    parts = []
    if out.not_on_remote:
        parts.append(f"{_count(out.not_on_remote, 'object')} to push, "
                     f"{output.human_size(out.bytes_not_on_remote)}")
    if out.not_in_cache:
        parts.append(f"{_count(out.not_in_cache, 'object')} to pull")
    if out.missing:
        parts.append(f"{_count(out.missing, 'object')} in neither cache nor remote")
    return "; ".join(parts)


COMMANDS = [remote, push, fetch, pull]
