"""Every error Cairn raises on purpose, under one root.

    CairnError                       exit 1 unless a subclass says otherwise
    ├── UserError                    bad input: a path, a flag, a value (exit 2)
    │   ├── PathError                a path outside the repository, or in .git, or in an out
    │   ├── ConfigError              a config key or file that cannot be used
    │   └── FormatError              a file Cairn reads is malformed (names file and line)
    ├── NotFoundError                something named does not exist (also a KeyError)
    │   └── ObjectNotFound           an object is in neither the cache nor the remote
    ├── ConflictError                the workspace disagrees with what was asked
    ├── GateRefused                  a promotion's gates said no (carries every verdict)
    ├── PermissionDenied             the acting user lacks the permission it needs
    ├── ApprovalPending              the gates want approvers: a request was opened instead
    ├── IntegrityError               bytes whose digest is not their name
    ├── LockError                    another Cairn process holds the repository lock
    ├── RemoteError                  a remote is unreachable, refuses us, or misbehaves
    │   └── ObjectArchived           an object in a storage class that needs a restore
    │                                (S3 GLACIER, DEEP_ARCHIVE) before it can be read
    ├── DatabaseError                the metadata database is unreachable or refuses us
    ├── MachineError                 the machine refused: disk full, file too large, no
    │                                permission, read-only filesystem (`from_os_error`)
    └── NotARepositoryError          not inside a Cairn repository (or one too new)

    Interrupted                      a signal stopped `cairn repro`: not an error, a
                                     KeyboardInterrupt (exit 128 + the signal's number)

Anything else escaping to the user is a bug. The CLI prints ``str(error)`` as one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class CairnError(Exception):
    """Root of every error Cairn raises deliberately."""

    exit_code = 1


class UserError(CairnError):
    exit_code = 2


class PathError(UserError):
    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class ConfigError(UserError):
    pass


class FormatError(UserError):
    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.line = line


class NotFoundError(CairnError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ObjectNotFound(NotFoundError):
    def __init__(self, oid: str, where: str = "the cache") -> None:
        super().__init__(f"object {oid} is not in {where}")
        self.oid = oid


class ConflictError(CairnError):
    pass


class GateRefused(CairnError):
    """A promotion refused by its model's gates. `verdicts` holds every rule's verdict
    (`cairn.registry.gates.Verdict`: rule, expected, actual, passed), failing or not."""

    def __init__(self, message: str, verdicts: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.verdicts = list(verdicts)


class PermissionDenied(CairnError):
    pass


class ApprovalPending(CairnError):
    """A promotion the gates passed but whose policy wants approvers: `request` (a
    `PromotionRequest`) was opened instead of moving the version."""

    def __init__(self, message: str, request: Any = None) -> None:
        super().__init__(message)
        self.request = request


class IntegrityError(CairnError):
    def __init__(self, message: str, oid: str | None = None) -> None:
        super().__init__(message)
        self.oid = oid


class LockError(CairnError):
    exit_code = 3


class RemoteError(CairnError):
    def __init__(self, message: str, remote: str | None = None) -> None:
        super().__init__(message)
        self.remote = remote


class ObjectArchived(RemoteError):
    """Object `oid` on `remote` is archived (S3 GLACIER or DEEP_ARCHIVE): a restore must
    be requested, and finish, before its bytes can be read. `storage_class` where known;
    `restore_requested` once Cairn has asked for it."""

    def __init__(self, message: str, oid: str = "", remote: str | None = None,
                 storage_class: str | None = None, restore_requested: bool = False) -> None:
        super().__init__(message, remote)
        self.oid = oid
        self.storage_class = storage_class
        self.restore_requested = restore_requested


class DatabaseError(CairnError):
    """The database cannot be reached or refused an operation (not the caller's input)."""


class NotARepositoryError(CairnError):
    pass


class MachineError(CairnError):
    """An error of the environment, not of Cairn or its input (see `from_os_error`)."""

    def __init__(self, message: str, errno: int, path: str | None = None) -> None:
        super().__init__(message)
        self.errno = errno
        self.path = path


# errno name → (what happened, at "{path}", what to do). Every write Cairn makes goes
# to a temp name first, so when one of these stops it no file is left half-written.
_MACHINE_ERRORS = {
    "ENOSPC": ("no space left on the device holding {path}",
               "free some space (`cairn gc` deletes unreferenced cache objects) and rerun"),
    "EDQUOT": ("disk quota exceeded writing {path}", "free some space or raise the quota"),
    "EFBIG": ("{path}: file too large for its filesystem or for this process's file-size "
              "limit (ulimit -f)", "raise the limit or use another filesystem, then rerun"),
    "EACCES": ("permission denied: {path}", "check its permissions (or run as its owner)"),
    "EPERM": ("operation not permitted on {path}", "check its permissions and attributes"),
    "EROFS": ("{path} is on a read-only filesystem", "remount it writable or work elsewhere"),
    "EMFILE": ("too many open files (at {path})", "raise `ulimit -n` or use fewer jobs (-j)"),
    "ENFILE": ("the system has too many open files (at {path})", "close some, then rerun"),
    "ENAMETOOLONG": ("{path}: name too long for its filesystem", "use a shorter name"),
    "EIO": ("input/output error at {path}: the disk or network filesystem may be failing",
            "check it, then run `cairn fsck`"),
    "ELOOP": ("{path}: too many levels of symlinks", "fix the symlinks on that path"),
}


def from_os_error(error: OSError) -> MachineError | None:
    """The one-line error for an OSError the machine raised (disk full, EFBIG, EACCES,
    EROFS, …); None for one that means a bug."""
    import errno as errno_names

    name = errno_names.errorcode.get(error.errno or 0)
    if name not in _MACHINE_ERRORS:
        return None
    what, todo = _MACHINE_ERRORS[name]
    where = _shown(error.filename) if error.filename is not None else "a file"
    if error.filename2 is not None:  # a copy or rename: the second name is being written
        where = f"{_shown(error.filename2)} (copying {where})"
    return MachineError(f"{what.format(path=where)}; {todo} — no file was left half-written",
                        error.errno or 0, where)


def _shown(path: object) -> str:
    """A path as short as it reads well: relative to here when it is below here."""
    import os

    text = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
    relative = os.path.relpath(text) if os.path.isabs(text) else text
    return text if relative.startswith("..") else relative


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP stopped the command, handled as Ctrl-C is (a
    KeyboardInterrupt, so that no ``except Exception`` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum  # as a shell reports a command a signal killed

    def __str__(self) -> str:
        import signal

        return f"interrupted by {signal.Signals(self.signum).name}"
