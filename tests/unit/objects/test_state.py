import os
from pathlib import Path

from cairn.objects.state import RACY_WINDOW_NS, NoStatCache, StatCache


def test_unchanged_file_is_answered_from_the_cache(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    st = os.stat(f)
    cache = StatCache(tmp_path / "state.db")
    cache.put(str(f), st, "d" * 64, st.st_mtime_ns + 10 * RACY_WINDOW_NS)
    cache.close()
    again = StatCache(tmp_path / "state.db")
    assert again.get(str(f), st) == "d" * 64


def test_racily_clean_entry_is_not_trusted(tmp_path: Path) -> None:
    # Recorded in the same tick the file was written: a second write in that tick
    # would keep size and mtime, so the entry must not be trusted.
    f = tmp_path / "f"
    f.write_text("x")
    st = os.stat(f)
    cache = StatCache(tmp_path / "state.db")
    cache.put(str(f), st, "d" * 64, st.st_mtime_ns + 1)
    assert cache.get(str(f), st) is None


def test_changed_stat_misses(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    cache = StatCache(tmp_path / "state.db")
    st = os.stat(f)
    cache.put(str(f), st, "d" * 64, st.st_mtime_ns + 10 * RACY_WINDOW_NS)
    f.write_text("xy")
    assert cache.get(str(f), os.stat(f)) is None


def test_no_stat_cache_remembers_nothing(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    cache = NoStatCache()
    cache.put(str(f), os.stat(f), "d" * 64, 0)
    assert cache.get(str(f), os.stat(f)) is None


def test_opening_waits_for_another_process_holding_the_database(tmp_path: Path) -> None:
    # Regression: two `cairn add` at once died with "database is locked" while the
    # first one switched a new state.db to WAL mode.
    import sqlite3
    import threading
    import time

    db = tmp_path / "state.db"
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    threading.Timer(0.3, lambda: holder.execute("COMMIT")).start()
    started = time.monotonic()
    cache = StatCache(db)  # waits for the holder instead of failing
    assert time.monotonic() - started >= 0.2
    cache.close()
    holder.close()
