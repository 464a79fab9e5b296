"""Who is acting: the identity recorded in audit rows and checked against permissions.

In embedded mode it is the OS user (CAIRN_USER overrides it, as GIT_AUTHOR_NAME does
for git: for CI jobs and shared accounts). Embedded permissions are guard rails among
colleagues who can all write the database file; the server enforces them for real,
acting as the user its token names.
"""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Iterator
from contextvars import ContextVar

# The user a server request acts for (its token's user), set around the request only.
_acting: ContextVar[str | None] = ContextVar("cairn_acting_user", default=None)


@contextlib.contextmanager
def acting_as(user: str) -> Iterator[None]:
    """Within this block (this thread or task, and threads it starts through contextvars-
    aware pools), `current_user()` is `user`: a server acting for its caller."""
    token = _acting.set(user)
    try:
        yield
    finally:
        _acting.reset(token)


def current_user() -> str:
    acting = _acting.get()
    if acting is not None:
        return acting
    named = os.environ.get("CAIRN_USER", "").strip()
    if named:
        return named
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return os.environ.get("USER", "unknown")
