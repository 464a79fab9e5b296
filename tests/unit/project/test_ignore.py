"""ensure_ignored: one exact line per name, found again, whatever the file holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.errors import PathError
from cairn.project.ignore import ensure_ignored


@pytest.mark.parametrize("name", ["model.pkl", "a ", "a?b", "form\x0cfeed", "caf\xe9"])
def test_a_second_call_finds_the_line(tmp_path: Path, name: str) -> None:
    assert ensure_ignored(tmp_path / name) == tmp_path / ".gitignore"
    assert ensure_ignored(tmp_path / name) is None
    assert len((tmp_path / ".gitignore").read_bytes().splitlines()) == 1


def test_the_file_is_kept_as_it_was_bytes_and_all(tmp_path: Path) -> None:
    before = b"# latin-1: \xe9\r\n/old\r\n*.tmp"  # CRLF, not UTF-8, no final newline
    (tmp_path / ".gitignore").write_bytes(before)
    assert ensure_ignored(tmp_path / "old") is None  # git reads "/old\r" as "/old"
    ensure_ignored(tmp_path / "new")
    assert (tmp_path / ".gitignore").read_bytes() == before + b"\n/new\n"


@pytest.mark.parametrize("name", ["a\nb", "a\r"])
def test_a_name_no_line_can_match_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(PathError, match="newline or carriage return"):
        ensure_ignored(tmp_path / name)
    assert not (tmp_path / ".gitignore").exists()
