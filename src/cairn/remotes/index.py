"""What this clone knows a remote holds, so a push with nothing new asks nobody.

A remote (by URL) → the objects this clone pushed there, fetched from there, or saw
there in a listing. Only `push` trusts it, and only to skip a remote entirely when
every object it would send is known to be there; any push with something new checks
the remote for all of its objects and corrects the index. `gc` and `fsck` never use
it, so a stale index can at worst leave a remote incomplete (which `cairn status
--cloud` shows and corrects), never delete the only copy of anything.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

SCHEMA = "CREATE TABLE IF NOT EXISTS present (url TEXT, oid TEXT, PRIMARY KEY (url, oid))"


class RemoteIndex:
    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(db_path, timeout=30, isolation_level=None)
        self._conn.execute(SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def has_all(self, url: str, oids: Iterable[str]) -> bool:
        known = {row[0] for row in self._conn.execute(
            "SELECT oid FROM present WHERE url = ?", (url,))}
        return all(oid in known for oid in oids)

    def add(self, url: str, oids: Iterable[str]) -> None:
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR IGNORE INTO present VALUES (?, ?)",
                                   ((url, oid) for oid in oids))

    def forget(self, url: str, oids: Iterable[str]) -> None:
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany("DELETE FROM present WHERE url = ? AND oid = ?",
                                   ((url, oid) for oid in oids))
