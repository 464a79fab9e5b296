"""Remotes: object stores reached through fsspec, and moving objects to and from them.

``open_remote(config, name)`` builds a ``Remote``; ``transfer.push`` / ``transfer.fetch``
move the objects that are missing, in parallel, verifying digests on the way.
"""

from cairn.remotes.connect import connect, open_remote
from cairn.remotes.remote import LocalObjects, Remote

__all__ = ["LocalObjects", "Remote", "connect", "open_remote"]
