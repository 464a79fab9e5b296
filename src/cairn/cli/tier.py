"""`cairn tier apply`: what only Archived model versions need, to the cold remote and back."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cairn.cli import output

if TYPE_CHECKING:
    from cairn.lifecycle.tiering import TierResult


@click.group()
def tier() -> None:
    """Keep the objects only Archived model versions need on the cold remote."""


@tier.command("apply")
@click.option("-r", "--remote", "hot", help="The hot remote (default: core.remote).")
@click.option("--cold", help="The cold remote (default: the one marked tier = \"cold\").")
@click.option("--rev", "revs", multiple=True, metavar="REV",
              help="Also keep hot what git revision REV references (repeatable).")
@click.option("-T", "--all-tags", is_flag=True, help="Also keep hot what every git tag references.")
@click.option("-a", "--all-branches", is_flag=True,
              help="Also keep hot what every git branch references.")
@click.option("-A", "--all-commits", is_flag=True,
              help="Also keep hot what every git commit references.")
@click.option("--dry-run", is_flag=True, help="List what would move; change nothing.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Parallel requests to remotes.")
@output.json_option
def tier_apply(hot: str | None, cold: str | None, revs: tuple[str, ...], all_tags: bool,
               all_branches: bool, all_commits: bool, dry_run: bool, jobs: int | None,
               as_json: bool) -> None:
    """Move objects only Archived versions reference to the cold remote, and back those a
    version promoted again references."""
    from cairn.commands import tiering

    result = tiering.tier_apply(hot=hot, cold=cold, revs=revs, all_tags=all_tags,
                                all_branches=all_branches, all_commits=all_commits,
                                dry_run=dry_run, jobs=jobs)
    if as_json:
        output.emit_json(result.to_dict())
    else:
        _show(result)
    result.raise_for_failures()


def _show(result: TierResult) -> None:
    would = "would move" if result.dry_run else "moved"
    moves = [(result.to_cold, result.cold, result.moved_to_cold),
             (result.to_hot, result.hot, result.moved_to_hot)]
    for planned, where, moved in moves:  # one line per object: full digests, greppable
        for oid in sorted(planned if result.dry_run else moved):
            output.echo(f"{would} {oid}  {output.human_size(planned[oid]):>10}  to {where!r}"
                        f"  {result.paths.get(oid, '')}".rstrip())
    for planned, where, moved in moves:
        count = len(planned) if result.dry_run else len(moved)
        size = sum(planned[oid] for oid in (planned if result.dry_run else moved))
        output.echo(f"{would.capitalize()} {count} object(s) ({output.human_size(size)}) to "
                    f"{'cold' if where == result.cold else 'hot'} remote {where!r}.")
    for message in result.pending.values():
        output.warn(message)
    if result.pending:
        output.warn(f"{len(result.pending)} object(s) stay on {result.cold!r} until their "
                    "restore finishes; run `cairn tier apply` again then")


COMMANDS = [tier]
