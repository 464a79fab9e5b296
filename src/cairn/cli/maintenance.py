"""Maintenance commands: gc, fsck, du."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cairn.cli import output

if TYPE_CHECKING:
    from cairn.lifecycle.gc import GcResult

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
    """Logical size of tracked data vs stored size (dedup ratio) in the cache and a remote."""
    from cairn.commands import data

    usage = data.du(remote=remote, jobs=jobs)
    if as_json:
        output.emit_json(usage.to_dict())
        return
    rows: list[tuple[str, str, str, str]] = [("tracked (logical)", f"{usage.files} file(s)",
                                              output.human_size(usage.logical_bytes), "")]
    for store in usage.stores:
        ratio = usage.dedup_ratio(store)
        rows.append((store.store, f"{store.objects} object(s)", output.human_size(store.bytes),
                     "-" if ratio is None else f"{ratio:.2f}x"))
    output.table(["", "count", "size", "dedup ratio"], rows)


COMMANDS = [gc, fsck, du]
