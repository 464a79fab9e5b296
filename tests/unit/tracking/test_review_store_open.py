"""Review: opening the tracking database while another process is still creating it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from cairn.store.open import open_store

# What the first opener of a new file does before it has switched the file to WAL: a
# write transaction in SQLite's default journal mode.
CREATOR = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("CREATE TABLE scratch (x)")
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO scratch VALUES (1)")
print("writing", flush=True)
time.sleep(1.5)
db.execute("COMMIT")
"""


def test_a_second_opener_waits_for_the_creator_instead_of_failing(tmp_path: Path) -> None:
    """Switching to WAL needs the file to itself; SQLite answers "database is locked" at
    once rather than calling the busy handler, so eight processes starting their first
    run together failed now and then (test_store_concurrency's new-file test flaked)."""
    db = tmp_path / "cairn.db"
    with subprocess.Popen([sys.executable, "-c", CREATOR, str(db)],
                          stdout=subprocess.PIPE, text=True) as creator:
        assert creator.stdout is not None and creator.stdout.readline() == "writing\n"
        started = time.monotonic()
        open_store(f"sqlite:///{db}").close()
        assert time.monotonic() - started < 30
