from pathlib import Path, PurePosixPath

import pytest

from cairn.errors import FormatError
from cairn.project import pointer
from cairn.project.pointer import PointerFile
from cairn.project.tracked import TrackedPath

GOLDEN = Path(__file__).parents[2] / "golden" / "pointer-v1.cairn"
A, B = "a" * 64, "b" * 64


def test_pointer_format_is_pinned(tmp_path: Path) -> None:
    ptr = PointerFile(tmp_path / "x.cairn", (
        TrackedPath("data", B, 48213, 3),
        TrackedPath("classifier.pkl", A, 1024, extra={"desc": "a user's note, kept"}),
    ))
    assert pointer.dumps(ptr) == GOLDEN.read_bytes()
    loaded = pointer.loads(GOLDEN.read_bytes(), tmp_path / "x.cairn")
    assert loaded == ptr
    assert loaded.outs[1].extra == {"desc": "a user's note, kept"}
    assert loaded.outs[0].is_dir and not loaded.outs[1].is_dir


def load_text(tmp_path: Path, text: str) -> PointerFile:
    return pointer.loads(text.encode(), tmp_path / "model.pkl.cairn")


@pytest.mark.parametrize(("text", "message"), [
    ("outs:\n- path: m\n  digest: [unclosed\n", r"model.pkl.cairn:4: .*restore it from git"),
    (f"outs:\n- path: m\n  hash: blake3\n  size: 3\n  digest: {A[:10]}\n",
     r"model.pkl.cairn:5: out 'digest' .* is not a blake3 digest"),
    (f"outs:\n- path: ../../etc/passwd\n  digest: {A}\n  size: 1\n",
     r"model.pkl.cairn:2: out 'path' .*climbs out of the workspace with"),
    (f"outs:\n- path: m\n  hash: md5\n  digest: {A}\n  size: 1\n",
     r"model.pkl.cairn:3: out 'hash' is 'md5'"),
    (f"outs:\n- path: m\n  digest: {A}\n  size: -1\n", r":4: out 'size' must be"),
    ("outs: 3\n", r":1: `outs` must be a list"),
    ("- just a list\n", r":1: expected a mapping"),
    (f"format: 2\nouts:\n- path: m\n  digest: {A}\n  size: 1\n", r"newer than this Cairn"),
])
def test_malformed_pointer_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        load_text(tmp_path, text)


def test_find_pointer_files_skips_tracked_directories(tmp_path: Path) -> None:
    (tmp_path / "data" / "inner").mkdir(parents=True)
    (tmp_path / "data.cairn").write_text("")
    (tmp_path / "data" / "inner" / "ghost.cairn").write_text("")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.pkl.cairn").write_text("")
    found = [p.relative_to(tmp_path).as_posix() for p in pointer.find_pointer_files(tmp_path)]
    assert found == ["data.cairn", "models/m.pkl.cairn"]


@pytest.mark.parametrize("name", ["model.pkl", "data", "sub/dir-1/x_y.csv", "123", "yes",
                                  "null", "1e5", "-rf", "with space", "ümlaut", "a//b", "./a"])
def test_the_fast_reader_agrees_with_yaml(tmp_path: Path, name: str) -> None:
    ptr = PointerFile(tmp_path / "x.cairn", (TrackedPath(name, A, 7), TrackedPath("d", B, 9, 2)))
    data = pointer.dumps(ptr)
    assert pointer.loads(data, ptr.path) == pointer.loads_yaml(data, ptr.path)
    assert pointer.loads(data, ptr.path).outs[0].path == PurePosixPath(name).as_posix()
