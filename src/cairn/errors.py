"""Every error Cairn raises on purpose, under one root.

    CairnError                       exit 1 unless a subclass says otherwise
    ├── UserError                    bad input: a path, a flag, a value (exit 2)
    │   ├── PathError                a path outside the repository, or in .git, or in an out
    │   ├── ConfigError              a config key or file that cannot be used
    │   └── FormatError              a file Cairn reads is malformed (names file and line)
    ├── NotFoundError                something named does not exist (also a KeyError)
    │   └── ObjectNotFound           an object is in neither the cache nor the remote
    ├── ConflictError                the workspace disagrees with what was asked
    ├── IntegrityError               bytes whose digest is not their name
    ├── LockError                    another Cairn process holds the repository lock
    ├── RemoteError                  a remote is unreachable, refuses us, or misbehaves
    ├── DatabaseError                the metadata database is unreachable or refuses us
    └── NotARepositoryError          not inside a Cairn repository (or one too new)

    Interrupted                      a signal stopped `cairn repro`: not an error, a
                                     KeyboardInterrupt (exit 128 + the signal's number)

Anything else escaping to the user is a bug. The CLI prints ``str(error)`` as one line.
"""

from __future__ import annotations


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


class DatabaseError(CairnError):
    """The database cannot be reached or refused an operation (not the caller's input)."""


class NotARepositoryError(CairnError):
    pass


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
