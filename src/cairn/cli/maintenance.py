"""Maintenance commands: gc, retention, fsck, du."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cairn.cli import output
from cairn.cli._client import when

if TYPE_CHECKING:
    from cairn.lifecycle.gc import GcResult
    from cairn.lifecycle.retention import RetentionResult

@click.command()
@click.option("-w", "--workspace", is_flag=True,
              help="Keep what the workspace's pointer files reference (always on).")
@click.option("-T", "--all-tags", is_flag=True, help="Also keep what every git tag references.")
@click.option("-a", "--all-branches", is_flag=True,
              help="Also keep what every git branch references.")
@click.option("-A", "--all-commits", is_flag=True,
              help="Also keep what every git commit references.")
@click.option("-c", "--cloud", is_flag=True, help="Also delete unreferenced remote objects.")
@click.option("-r", "--remote", help="Remote to check for copies and clean (default: core.remote).")
@click.option("-f", "--force", is_flag=True,
              help="Delete cache objects even when no remote holds a copy.")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; change nothing.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Parallel requests to the remote.")
@output.json_option
def gc(workspace: bool, all_tags: bool, all_branches: bool, all_commits: bool, cloud: bool,
       remote: str | None, force: bool, dry_run: bool, jobs: int | None, as_json: bool) -> None:
    """Delete cache (and with --cloud, remote) objects that nothing in scope references."""
    from cairn.commands import data

    result = data.gc(all_tags=all_tags, all_branches=all_branches, all_commits=all_commits,
                     cloud=cloud, remote=remote, force=force, dry_run=dry_run, jobs=jobs)
    if as_json:
        output.emit_json(result.to_dict())
        return
    _show_gc(result)


def _show_gc(result: GcResult) -> None:
    if result.dry_run:  # one line per object: full digests, never cut to fit a table
        for oid, size in sorted(result.removed.items()):
            output.echo(f"would remove {oid}  {output.human_size(size):>10}  from the cache")
        for oid, size in sorted(result.removed_from_remote.items()):
            output.echo(f"would remove {oid}  {output.human_size(size):>10}  "
                        f"from {result.remote!r}")
        for temp in result.remote_temp_files:
            output.echo(f"would remove {temp.describe()}  {output.human_size(temp.size):>10}"
                        f"  from {result.remote!r}")
    output.echo(_freed(result, "the cache", result.removed) +
                f"; kept {result.referenced} object(s) referenced in scope ({result.scope}).")
    if result.cloud:
        output.echo(_freed(result, f"remote {result.remote!r}", result.removed_from_remote)
                    + ".")
    if result.remote_temp_files:
        _show_temp_files(result)
    _warn_only_copies(result)


def _show_temp_files(result: GcResult) -> None:
    total = result.remote_temp_bytes
    verb = "Would remove" if result.dry_run else "Removed"
    hours = result.temp_age // 3600
    output.echo(f"{verb} {len(result.remote_temp_files)} temp file(s) of interrupted pushes "
                f"(unwritten for over {hours} hours) from remote {result.remote!r}, freeing "
                f"{output.human_size(total)} ({total} bytes).")


def _freed(result: GcResult, where: str, removed: dict[str, int]) -> str:
    if not removed:
        return f"Nothing to remove from {where}"
    total = sum(removed.values())
    verb = "Would remove" if result.dry_run else "Removed"
    return (f"{verb} {len(removed)} object(s) from {where}, freeing {output.human_size(total)} "
            f"({total} bytes)")


def _warn_only_copies(result: GcResult) -> None:
    if not result.kept_only_copy:
        return
    count, size = len(result.kept_only_copy), output.human_size(result.bytes_kept)
    if result.remote is None:
        output.warn(f"no default remote is configured, so gc deleted nothing from the cache: "
                    f"{count} unreferenced object(s) ({size}) may be their only copy; rerun "
                    "with --force to delete them, or set a default remote that holds copies "
                    "(`cairn remote add -d NAME URL`)")
    else:
        output.warn(f"kept {count} unreferenced object(s) ({size}) that remote "
                    f"{result.remote!r} does not have, as they are the only copy; rerun with "
                    "--force to delete them anyway")


@click.command()
@click.option("-r", "--remote", help="Also verify this remote's objects (reported, not deleted).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Objects hashed in parallel.")
@output.json_option
def fsck(remote: str | None, jobs: int | None, as_json: bool) -> None:
    """Re-hash every object; move corrupt cache objects to quarantine and report them."""
    from cairn.commands import data

    with output.progress("Verifying", unit="objects") as advance:
        result = data.fsck(remote=remote, jobs=jobs, progress=advance)
    if as_json:
        output.emit_json(result.to_dict())
    else:
        checked = f"Checked {result.checked} object(s) in the cache"
        if result.remote is not None:
            checked += f" and {result.remote_checked} in remote {result.remote!r}"
        output.echo(checked + (": all good." if result.ok else "."))
        for p in result.problems:  # a line each, like `git fsck`: full digests, greppable
            where = "the cache" if p.store == "cache" else f"remote {p.store!r}"
            used = f", used by {', '.join(p.paths)}" if p.paths else ""
            action = "quarantined" if p.quarantined else "left in place"
            output.echo(f"{p.kind} {p.oid} in {where}{used}: {p.detail} ({action})")
    result.raise_for_problems()


@click.command()
@click.option("-r", "--remote", help="Also measure this remote.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Parallel requests to the remote.")
@output.json_option
def du(remote: str | None, jobs: int | None, as_json: bool) -> None:
    """Logical size of every live version vs stored size (dedup ratio), cache and a remote."""
    from cairn.commands import data

    usage = data.du(remote=remote, jobs=jobs)
    if as_json:
        output.emit_json(usage.to_dict())
        return
    rows: list[tuple[str, str, str, str]] = [("live data (logical)", f"{usage.files} file(s)",
                                              output.human_size(usage.logical_bytes), "")]
    for store in usage.stores:
        ratio = usage.dedup_ratio(store)
        rows.append((store.store, f"{store.objects} object(s)", output.human_size(store.bytes),
                     "-" if ratio is None else f"{ratio:.2f}x"))
    output.table(["", "count", "size", "dedup ratio"], rows)


@click.group()
def retention() -> None:
    """Delete old runs and what only they referenced, by the [retention.runs] policy."""


@retention.command("apply")
@click.option("-c", "--cloud", is_flag=True,
              help="Also delete the objects' copies on the remotes (every one, or those of -r).")
@click.option("-r", "--remote", "remotes", multiple=True,
              help="With --cloud: only this remote (repeatable).")
@click.option("-A", "--all-commits", is_flag=True,
              help="Also keep what every git commit references (tags and branches always are).")
@click.option("--dry-run", is_flag=True, help="List the runs and objects that would go; change "
                                             "nothing.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Parallel requests to remotes.")
@output.json_option
def retention_apply(cloud: bool, remotes: tuple[str, ...], all_commits: bool, dry_run: bool,
                    jobs: int | None, as_json: bool) -> None:
    """Delete the runs the policy expires and the objects only they referenced."""
    from cairn.commands import data

    if remotes and not cloud:
        from cairn.errors import UserError

        raise UserError("-r/--remote names remotes to clean, which --cloud does; add --cloud")
    result = data.retention_apply(cloud=cloud, remotes=remotes, all_commits=all_commits,
                                  dry_run=dry_run, jobs=jobs)
    if as_json:
        output.emit_json(result.to_dict())
        return
    _show_retention(result)


def _show_retention(result: RetentionResult) -> None:
    verb = "would delete" if result.dry_run else "deleted"
    if result.dry_run:  # one line per run and object: full ids, greppable
        for run in result.runs_to_delete:
            output.echo(f"would delete run {run.run_id}  {run.run_name or '-'}  "
                        f"(experiment {run.experiment_id}, started "
                        f"{when(run.start_time)})")
        for place, found in result.objects.items():
            where = "the cache" if place == "cache" else f"remote {place!r}"
            for oid, size in sorted(found.items()):
                output.echo(f"would remove {oid}  {output.human_size(size):>10}  from {where}")
    gone = len(result.runs_to_delete)
    again = len(result.runs) - gone
    earlier = f" (and the objects of {again} run(s) deleted before)" if again else ""
    output.echo(f"Policy: {result.policy}. {verb.capitalize()} {gone} run(s){earlier}; kept "
                f"{len(result.kept)} old run(s) the policy keeps.")
    for place, found in result.objects.items():
        where = "the cache" if place == "cache" else f"remote {place!r}"
        size = sum(found.values())
        output.echo(f"{'Would remove' if result.dry_run else 'Removed'} {len(found)} object(s) "
                    f"from {where}, freeing {output.human_size(size)} ({size} bytes).")
    if result.skipped_runs:
        output.warn(f"kept {len(result.skipped_runs)} run(s) registered as a version's source "
                    f"while retention ran: {', '.join(result.skipped_runs)}")


COMMANDS = [gc, retention, fsck, du]
