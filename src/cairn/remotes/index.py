"""What this clone knows a remote holds, so a push with nothing new asks nobody.

A remote (by URL) → the objects this clone pushed there, fetched from there, or saw
there in a listing (`present`), and the objects this clone found corrupt there
(`damaged`: `cairn fsck -r`, or a fetch that got bytes hashing to another name). Only
`push` trusts `present`, and only to skip a remote entirely when every object it would
send is known to be there and none is damaged; any push with something new checks the
remote for all of its objects and corrects the index. A damaged object is never
"present": push replaces it from the cache (if the cache has it) and clears the mark
once a verified upload or download shows good bytes there. `gc` and `fsck` never trust
it, so a stale index can at worst leave a remote incomplete (which `cairn status
--cloud` shows and corrects), never delete the only copy of anything.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

# IF NOT EXISTS: an index written before a table existed gains it on first open.
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS present (url TEXT, oid TEXT, PRIMARY KEY (url, oid))",
    "CREATE TABLE IF NOT EXISTS damaged (url TEXT, oid TEXT, PRIMARY KEY (url, oid))",
)


class RemoteIndex:
    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(db_path, timeout=30, isolation_level=None)
        for statement in SCHEMA:
            self._conn.execute(statement)

    def close(self) -> None:
        self._conn.close()

    def has_all(self, url: str, oids: Iterable[str]) -> bool:
        """Whether every one of `oids` is known to be on the remote, and none damaged."""
        known = self._oids("present", url) - self.damaged(url)
        return all(oid in known for oid in oids)

    def present(self, url: str) -> set[str]:
        """The objects this clone knows the remote at `url` holds (damaged ones too)."""
        return self._oids("present", url)

    def damaged(self, url: str) -> set[str]:
        """The objects this clone found corrupt on the remote at `url`."""
        return self._oids("damaged", url)

    def add(self, url: str, oids: Iterable[str]) -> None:
        """The remote has `oids` (their bytes unchecked: a damage mark stays)."""
        self._write("INSERT OR IGNORE INTO present VALUES (?, ?)", url, oids)

    def verified(self, url: str, oids: Iterable[str]) -> None:
        """The remote has good bytes for `oids`: just uploaded or downloaded, hashed."""
        oids = list(oids)
        self.add(url, oids)
        self._write("DELETE FROM damaged WHERE url = ? AND oid = ?", url, oids)

    def mark_damaged(self, url: str, oids: Iterable[str]) -> None:
        """The remote's bytes for `oids` hash to another name: no longer "present"."""
        oids = list(oids)
        self._write("INSERT OR IGNORE INTO damaged VALUES (?, ?)", url, oids)
        self._write("DELETE FROM present WHERE url = ? AND oid = ?", url, oids)

    def set_damaged(self, url: str, oids: Iterable[str]) -> None:
        """After a check of every object there: exactly `oids` are damaged."""
        oids = set(oids)
        self._write("DELETE FROM damaged WHERE url = ? AND oid = ?", url,
                    self.damaged(url) - oids)
        self.mark_damaged(url, oids)

    def forget(self, url: str, oids: Iterable[str]) -> None:
        """The remote does not have `oids` (any more): neither present nor damaged."""
        oids = list(oids)
        self._write("DELETE FROM present WHERE url = ? AND oid = ?", url, oids)
        self._write("DELETE FROM damaged WHERE url = ? AND oid = ?", url, oids)

    def _oids(self, table: str, url: str) -> set[str]:
        return {row[0] for row in self._conn.execute(
            f"SELECT oid FROM {table} WHERE url = ?", (url,))}  # table: one of ours

    def _write(self, statement: str, url: str, oids: Iterable[str]) -> None:
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany(statement, ((url, oid) for oid in oids))
