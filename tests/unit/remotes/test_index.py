"""The remote index: what a clone knows a remote holds, and which copies there are corrupt."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cairn.remotes.index import RemoteIndex

URL = "/srv/store"
A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_an_index_written_before_damage_marks_is_still_read(tmp_path: Path) -> None:
    db = tmp_path / "remotes.db"
    old = sqlite3.connect(db)  # the schema of the first release: one table
    old.execute("CREATE TABLE present (url TEXT, oid TEXT, PRIMARY KEY (url, oid))")
    old.executemany("INSERT INTO present VALUES (?, ?)", [(URL, A), (URL, B)])
    old.commit()
    old.close()
    index = RemoteIndex(db)
    try:
        assert index.has_all(URL, [A, B]) and not index.has_all(URL, [C])
        assert index.damaged(URL) == set()
        index.mark_damaged(URL, [A])
        assert index.damaged(URL) == {A}
    finally:
        index.close()


def test_a_damaged_object_is_not_present_until_good_bytes_are_seen(tmp_path: Path) -> None:
    index = RemoteIndex(tmp_path / "remotes.db")
    try:
        index.add(URL, [A, B])
        index.mark_damaged(URL, [A])
        assert not index.has_all(URL, [A]) and index.has_all(URL, [B])
        index.add(URL, [A])  # a listing shows it exists; its bytes are still bad
        assert not index.has_all(URL, [A]) and index.damaged(URL) == {A}
        index.verified(URL, [A])  # uploaded or downloaded, hashed on the way
        assert index.has_all(URL, [A, B]) and index.damaged(URL) == set()
        assert index.damaged("/other/store") == set()
    finally:
        index.close()


def test_a_full_check_sets_the_damage_marks_and_forget_clears_them(tmp_path: Path) -> None:
    index = RemoteIndex(tmp_path / "remotes.db")
    try:
        index.mark_damaged(URL, [A, B])
        index.set_damaged(URL, [B, C])  # fsck -r: B and C are bad now, A is not
        assert index.damaged(URL) == {B, C}
        index.forget(URL, [C])  # gone from the remote: nothing to replace
        assert index.damaged(URL) == {B}
    finally:
        index.close()
