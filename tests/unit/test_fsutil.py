"""fsutil: files replaced whole or not at all."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cairn.fsutil import atomic_copy, atomic_write


def test_atomic_copy_replaces_the_file_whole_with_its_mode(tmp_path: Path) -> None:
    src, dest = tmp_path / "src.bin", tmp_path / "dest.bin"
    src.write_bytes(os.urandom(3 << 20))  # more than one copy chunk
    atomic_write(dest, b"old")
    atomic_copy(src, dest, mode=0o755)
    assert dest.read_bytes() == src.read_bytes()
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest.bin", "src.bin"]


def test_a_failed_copy_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    dest = tmp_path / "dest.bin"
    atomic_write(dest, b"old")
    with pytest.raises(FileNotFoundError):
        atomic_copy(tmp_path / "missing", dest)
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["dest.bin"]
