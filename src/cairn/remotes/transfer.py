"""Move the objects that are missing between the cache and a remote, in parallel.

Only missing objects move, so an interrupted transfer resumes by running it again; a
push also replaces the objects its caller knows are corrupt on the remote.
Bytes are verified on the way: a push hashes what it reads from the cache and refuses
a corrupt object; a fetch hashes what it writes and installs only matching bytes.
A failure of one object (corrupt, missing) is reported and the rest carry on; a failure
of the remote itself (unreachable, access denied) stops the transfer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cairn.errors import CairnError, IntegrityError, NotFoundError, RemoteError
from cairn.remotes.remote import LocalObjects, Remote, run_parallel

DEFAULT_JOBS = 8
# Errors that concern one object; anything else concerns the remote and stops the run.
PER_OBJECT_ERRORS: tuple[type[BaseException], ...] = (IntegrityError, NotFoundError)

Progress = Callable[[int], None]


@dataclass
class TransferResult:
    transferred: list[str] = field(default_factory=list)
    present: int = 0  # already where they were going
    failed: dict[str, CairnError] = field(default_factory=dict)  # oid → why
    bytes: int = 0
    replaced: list[str] = field(default_factory=list)  # corrupt on the remote, now good
    unrepaired: list[str] = field(default_factory=list)  # corrupt there, not in the cache

    def merge(self, other: TransferResult) -> None:
        self.transferred.extend(other.transferred)
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


def push(odb: LocalObjects, remote: Remote, oids: Iterable[str], jobs: int = DEFAULT_JOBS,
         progress: Progress | None = None,
         on_total: Callable[[int], None] | None = None,
         replace: Iterable[str] = ()) -> TransferResult:
    """Upload those of `oids` the remote lacks; `on_total` hears how many will move.

    `replace`: objects known to be corrupt on the remote (they may be outside `oids`);
    each is uploaded over the bad copy when the cache has it, else listed `unrepaired`.
    """
    remote.check_writable()
    damaged = set(replace)
    wanted = unique(oids)
    result = TransferResult()
    on_remote = remote.exists_many([oid for oid in wanted if oid not in damaged], jobs)
    result.present = len(on_remote)
    todo = []
    for oid in unique([*wanted, *sorted(damaged)]):
        if oid in on_remote:
            continue
        if odb.exists(oid):
            todo.append(oid)
        elif oid in damaged:
            result.unrepaired.append(oid)
        else:
            result.failed[oid] = NotFoundError(
                f"object {oid} is in neither the cache nor remote {remote.name!r}; "
                "pull it from another remote or re-add its file")
    # Local disks gain nothing from threads for small objects (measured); the network does.
    jobs = 1 if remote.scheme == "file" else jobs
    with remote.batch():
        _move(lambda oid: remote.upload(odb, oid, replace=oid in damaged), todo, jobs,
              progress, on_total, result)
    result.replaced = [oid for oid in result.transferred if oid in damaged]
    return result


def fetch(odb: LocalObjects, remote: Remote, oids: Iterable[str], jobs: int = DEFAULT_JOBS,
          progress: Progress | None = None,
          on_total: Callable[[int], None] | None = None) -> TransferResult:
    """Download those of `oids` the cache lacks; `on_total` hears how many will move."""
    wanted = unique(oids)
    result = TransferResult()
    todo = [oid for oid in wanted if not odb.exists(oid)]
    result.present = len(wanted) - len(todo)
    jobs = 1 if remote.scheme == "file" else jobs
    with odb.batch():  # one flush for all small objects, before any is named
        _move(lambda oid: remote.download(odb, oid), todo, jobs, progress, on_total, result)
    return result


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
