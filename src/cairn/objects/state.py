"""The stat cache: (inode, size, mtime_ns) → digest, so unchanged files are never re-hashed.

Stored in SQLite (``.cairn/tmp/state.db``, local to one machine, never committed).
Racy-git rule: an entry whose file mtime is not clearly older than the moment the
entry was recorded is not trusted — a file changed twice within one timestamp tick
would otherwise keep its old digest. Such files are re-hashed and re-recorded.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Linux stamps files from a coarse clock (a few ms behind); filesystems that keep
# whole seconds (FAT, some NFS) need a window of two seconds.
RACY_WINDOW_NS = 50_000_000
COARSE_RACY_WINDOW_NS = 2_000_000_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    path TEXT PRIMARY KEY,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL,
    recorded_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS trees (
    path TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    nfiles INTEGER NOT NULL,
    recorded_ns INTEGER NOT NULL
);
"""


def is_racy(mtime_ns: int, recorded_ns: int) -> bool:
    """Could the file have changed again within its timestamp tick after recording?"""
    window = COARSE_RACY_WINDOW_NS if mtime_ns % 1_000_000_000 == 0 else RACY_WINDOW_NS
    return recorded_ns - mtime_ns <= window


@dataclass(frozen=True)
class TreeRecord:
    """A directory's digest, valid while the stats of everything in it are unchanged."""

    fingerprint: str
    digest: str
    size: int
    nfiles: int
    recorded_ns: int


@dataclass(frozen=True)
class Entry:
    inode: int
    size: int
    mtime_ns: int
    digest: str
    recorded_ns: int

    def matches(self, st: os.stat_result) -> bool:
        if (st.st_ino, st.st_size, st.st_mtime_ns) != (self.inode, self.size, self.mtime_ns):
            return False
        return not is_racy(st.st_mtime_ns, self.recorded_ns)


def _prepare(conn: sqlite3.Connection, attempts: int = 200) -> None:
    """WAL mode and the tables. Switching the journal mode does not wait for other
    connections the way statements do (SQLite answers "locked" at once), so retry."""
    for attempt in range(attempts):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


class StatCache:
    """Digest lookups by path; `load_prefix` pulls a whole directory's rows at once."""

    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(db_path, timeout=30, isolation_level=None,
                                     check_same_thread=False)
        _prepare(self._conn)
        self._rows: dict[str, Entry] = {}
        self._pending: list[tuple[str, int, int, int, str, int]] = []

    def close(self) -> None:
        self.flush()
        self._conn.close()

    def load_prefix(self, prefix: str) -> None:
        """Read every row under directory `prefix` (absolute path) into memory."""
        low, high = prefix.rstrip("/") + "/", prefix.rstrip("/") + "0"  # '0' follows '/'
        rows = self._conn.execute(
            "SELECT path, inode, size, mtime_ns, digest, recorded_ns FROM state "
            "WHERE path >= ? AND path < ?", (low, high))
        for path, *rest in rows:
            self._rows[path] = Entry(*rest)

    def get(self, path: str, st: os.stat_result) -> str | None:
        entry = self._rows.get(path)
        if entry is None:
            row = self._conn.execute(
                "SELECT inode, size, mtime_ns, digest, recorded_ns FROM state WHERE path = ?",
                (path,)).fetchone()
            if row is None:
                return None
            entry = self._rows[path] = Entry(*row)
        return entry.digest if entry.matches(st) else None

    def put(self, path: str, st: os.stat_result, digest: str,
            recorded_ns: int | None = None) -> None:
        """Record a digest; `recorded_ns` is when the file was stat'ed before hashing."""
        now = time.time_ns() if recorded_ns is None else recorded_ns
        entry = Entry(st.st_ino, st.st_size, st.st_mtime_ns, digest, now)
        if self._rows.get(path) == entry:
            return
        self._rows[path] = entry
        self._pending.append((path, st.st_ino, st.st_size, st.st_mtime_ns, digest, now))

    def flush(self) -> None:
        if not self._pending:
            return
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR REPLACE INTO state VALUES (?, ?, ?, ?, ?, ?)",
                                   self._pending)
        self._pending.clear()

    def get_tree(self, path: str) -> TreeRecord | None:
        row = self._conn.execute(
            "SELECT fingerprint, digest, size, nfiles, recorded_ns FROM trees WHERE path = ?",
            (path,)).fetchone()
        return TreeRecord(*row) if row else None

    def put_tree(self, path: str, record: TreeRecord) -> None:
        with self._conn:
            self._conn.execute("INSERT OR REPLACE INTO trees VALUES (?, ?, ?, ?, ?, ?)",
                               (path, record.fingerprint, record.digest, record.size,
                                record.nfiles, record.recorded_ns))

    def forget(self, paths: Iterable[str]) -> None:
        gone = set(paths)
        for path in gone:  # this process must not vouch for them either
            self._rows.pop(path, None)
        self._pending = [row for row in self._pending if row[0] not in gone]
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany("DELETE FROM state WHERE path = ?", [(p,) for p in gone])


class NoStatCache(StatCache):
    """Remembers nothing: every file is hashed."""

    def __init__(self) -> None:
        self._rows = {}
        self._pending = []

    def close(self) -> None:
        pass

    def load_prefix(self, prefix: str) -> None:
        pass

    def get(self, path: str, st: os.stat_result) -> str | None:
        return None

    def put(self, path: str, st: os.stat_result, digest: str,
            recorded_ns: int | None = None) -> None:
        pass

    def flush(self) -> None:
        pass

    def forget(self, paths: Iterable[str]) -> None:
        pass

    def get_tree(self, path: str) -> TreeRecord | None:
        return None

    def put_tree(self, path: str, record: TreeRecord) -> None:
        pass
