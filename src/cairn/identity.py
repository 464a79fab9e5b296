"""Who is acting: the identity recorded in audit rows and checked against permissions.

In embedded mode it is the OS user (CAIRN_USER overrides it, as GIT_AUTHOR_NAME does
for git: for CI jobs and shared accounts). Embedded permissions are guard rails among
colleagues who can all write the database file; the server enforces them for real,
acting as the user its token names.
"""

from __future__ import annotations

import getpass
import os


def current_user() -> str:
    named = os.environ.get("CAIRN_USER", "").strip()
    if named:
        return named
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return os.environ.get("USER", "unknown")
