"""Copy the objects one ObjectDB lacks from another, in parallel; walk a tree across.

Only missing objects move, so an interrupted transfer resumes by running it again; the
caller may also name objects known to be corrupt at the destination, to replace them.
Bytes are verified on the way: they are hashed as they are read, and only bytes that
hash to their name appear at the destination. A failure of one object (corrupt,
missing, archived) is reported and the rest carry on; a failure of a store itself
(unreachable, access denied) stops the transfer. `fallbacks` are further sources, asked
in turn for what the first one lacks (a cold tier: cairn.remotes.tiers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import blake3

from cairn.errors import (
    CairnError,
    FormatError,
    IntegrityError,
    NotFoundError,
    ObjectArchived,
    RemoteError,
)
from cairn.objects.odb import ObjectDB
from cairn.objects.parallel import run_parallel
from cairn.objects.tree import read_tree

DEFAULT_JOBS = 8
# Errors that concern one object; anything else concerns a store and stops the run.
PER_OBJECT_ERRORS: tuple[type[BaseException], ...] = (IntegrityError, NotFoundError,
                                                       ObjectArchived)

Progress = Callable[[int], None]


@dataclass
class TransferResult:
    transferred: list[str] = field(default_factory=list)
    present: int = 0  # already where they were going
    failed: dict[str, CairnError] = field(default_factory=dict)  # oid → why
    bytes: int = 0
    replaced: list[str] = field(default_factory=list)  # corrupt at the destination, now good
    unrepaired: list[str] = field(default_factory=list)  # corrupt there, not in the source
    via: dict[str, str] = field(default_factory=dict)  # transferred oid → fallback's url

    def merge(self, other: TransferResult) -> None:
        self.transferred.extend(other.transferred)
        self.via.update(other.via)
        self.present += other.present
        self.failed.update(other.failed)
        self.bytes += other.bytes
        self.replaced.extend(other.replaced)
        self.unrepaired.extend(other.unrepaired)

    def raise_for_failures(self, verb: str) -> None:
        """One error for everything that failed: the failure itself when it is alone."""
        if not self.failed:
            return
        first = next(iter(self.failed.values()))
        if len(self.failed) == 1:
            raise first
        error = type(first) if isinstance(first, IntegrityError | RemoteError) else CairnError
        raise error(f"{len(self.failed)} objects could not be {verb}, e.g.: {first}")


def unique(oids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(oids))


def transfer(src: ObjectDB, dst: ObjectDB, oids: Iterable[str], jobs: int = DEFAULT_JOBS,
             progress: Progress | None = None,
             on_total: Callable[[int], None] | None = None,
             replace: Iterable[str] = (), fallbacks: Sequence[ObjectDB] = ()
             ) -> TransferResult:
    """Copy to `dst` those of `oids` it lacks; `on_total` hears how many will move.

    `replace`: objects known to be corrupt at `dst` (they may be outside `oids`); each
    is copied over the bad copy when `src` has it, else listed `unrepaired`.
    `fallbacks`: asked in turn for the objects `src` does not have.
    """
    dst.check_writable()
    damaged = set(replace)
    wanted = unique(oids)
    result = TransferResult()
    there = dst.exists_many([oid for oid in wanted if oid not in damaged], jobs)
    result.present = len(there)
    todo = []
    for oid in unique([*wanted, *sorted(damaged)]):
        if oid in there:
            continue
        if not src.is_local or src.exists(oid):  # a remote says so when asked for it
            todo.append(oid)
        elif oid in damaged:
            result.unrepaired.append(oid)
        else:
            result.failed[oid] = src.missing(oid, dst)
    # Local disks gain nothing from threads for small objects (measured); the network does.
    jobs = 1 if src.is_local and dst.is_local else jobs
    with dst.batch():  # one flush for all small objects, before any is named
        _move(lambda oid: copy_object(src, dst, oid, replace=oid in damaged), todo, jobs,
              progress, on_total, result)
    result.replaced = [oid for oid in result.transferred if oid in damaged]
    for fallback in fallbacks:
        _from_fallback(fallback, dst, result, jobs, progress, on_total)
    return result


def _from_fallback(src: ObjectDB, dst: ObjectDB, result: TransferResult, jobs: int,
                   progress: Progress | None, on_total: Callable[[int], None] | None) -> None:
    """What the first source lacked, from `src`; its errors say more than "not found"."""
    lacking = [oid for oid, e in result.failed.items() if isinstance(e, NotFoundError)]
    if not lacking:
        return
    found = transfer(src, dst, lacking, jobs, progress, on_total)
    for oid in found.transferred:
        del result.failed[oid]
    result.transferred.extend(found.transferred)
    result.via.update({oid: src.url for oid in found.transferred})
    result.bytes += found.bytes
    result.failed.update({oid: e for oid, e in found.failed.items()
                          if not isinstance(e, NotFoundError)})


def copy_object(src: ObjectDB, dst: ObjectDB, oid: str, replace: bool = False) -> int:
    """Copy object `oid` from `src` to `dst`, hashing it on the way; return its size.

    Bytes that do not hash to `oid` are refused (IntegrityError) and nothing appears at
    `dst`. A small object travels whole in memory (inside `dst.batch()`, without a flush
    of its own); a large one streams. `replace`: a (corrupt) copy may be at `dst`.
    """
    head = src.read_head(oid)
    if head is not None:
        _check(src, oid, str(blake3.blake3(head).hexdigest()))
        dst.put_verified(oid, head, replace)
        return len(head)
    with dst.receive(oid, replace) as out:
        digest, size = src.read_into(oid, out)
        _check(src, oid, digest)
    return size


def _check(src: ObjectDB, oid: str, digest: str) -> None:
    if digest != oid:
        raise src.corrupt(oid, digest)


def _move(one: Callable[[str], int], oids: list[str], jobs: int, progress: Progress | None,
          on_total: Callable[[int], None] | None, result: TransferResult) -> None:
    if on_total is not None:
        on_total(len(oids))  # `progress` is called once for each of them
    for oid, outcome in run_parallel(one, oids, jobs, PER_OBJECT_ERRORS):
        if isinstance(outcome, CairnError):
            result.failed[oid] = outcome
        elif isinstance(outcome, int):
            result.transferred.append(oid)
            result.bytes += outcome
        if progress is not None:
            progress(1)


# -- trees ---------------------------------------------------------------------------


def transfer_trees(src: ObjectDB, dst: ObjectDB, roots: Iterable[tuple[str, bool]],
                   jobs: int = DEFAULT_JOBS, progress: Progress | None = None,
                   on_total: Callable[[int], None] | None = None,
                   on_level: Callable[[TransferResult], None] | None = None,
                   fallbacks: Sequence[ObjectDB] = ()) -> TransferResult:
    """Copy (digest, is_directory) `roots` and everything below them, level by level:
    a manifest arrives before the objects it names, so `dst` never holds a manifest
    whose children it could not learn. Manifests are read at `dst` once there.

    `on_total` hears each level's count as it becomes known, so the total grows;
    `on_level` hears each level's result (and may stop the walk by raising);
    `fallbacks` are asked for what `src` lacks, as in `transfer`.
    """
    roots = list(roots)
    result = TransferResult()
    level = unique(oid for oid, _ in roots)
    trees = {oid for oid, is_dir in roots if is_dir}
    walked: set[str] = set()
    while level:
        moved = transfer(src, dst, level, jobs, progress, on_total, fallbacks=fallbacks)
        if on_level is not None:
            on_level(moved)
        result.merge(moved)
        walked |= trees
        level, trees = _next_level(dst, trees, result)
        trees -= walked
    return result


def _next_level(odb: ObjectDB, trees: set[str], result: TransferResult
                ) -> tuple[list[str], set[str]]:
    """What `trees` (now in `odb`, unless their copy failed) name, and their subtrees."""
    children: list[str] = []
    subtrees: set[str] = set()
    for tree in sorted(trees):
        if not odb.exists(tree):
            continue  # its copy failed and is already reported
        try:
            entries = read_tree(odb, tree)
        except (IntegrityError, FormatError) as e:
            result.failed[tree] = e
            continue
        for entry in entries:
            children.append(entry.digest)
            if entry.is_dir:
                subtrees.add(entry.digest)
    return unique(children), subtrees
