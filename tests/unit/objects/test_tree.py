import os
from pathlib import Path

import pytest

from cairn.errors import FormatError, PathError
from cairn.objects import tree
from cairn.objects.odb import ObjectDB
from cairn.objects.state import StatCache
from cairn.objects.tree import TreeEntry, decode_tree, encode_tree, scan_dir

GOLDEN = Path(__file__).parents[2] / "golden"
A = "a" * 64
B = "b" * 64


def test_manifest_encoding_is_pinned() -> None:
    entries = [TreeEntry("z.txt", "file", A, 3, "0644"), TreeEntry("sub", "dir", B, 10, "0755"),
               TreeEntry("run.sh", "file", A, 3, "0755")]
    assert encode_tree(entries) == (GOLDEN / "tree-v1.json").read_bytes().rstrip(b"\n")
    assert decode_tree(encode_tree(entries)) == sorted(entries, key=lambda e: e.name)


@pytest.mark.parametrize("name", ["..", ".", "a/b", "", "a\0b", ".git", ".GIT", ".cairn",
                                  ".git.", "GIT~1", ".g\u200cit", ".cairn ", ".git::$DATA"])
def test_manifest_names_cannot_escape_or_enter_git_and_cairn(name: str) -> None:
    bad = encode_tree([TreeEntry(name, "file", A, 1)])
    with pytest.raises(FormatError, match="entry '"):
        decode_tree(bad)


@pytest.mark.parametrize("mode", ["4755", "6777", "0777", "1644", "755"])
def test_manifest_modes_are_the_two_a_checkout_writes(mode: str) -> None:
    with pytest.raises(FormatError, match="bad entry"):
        decode_tree(encode_tree([TreeEntry("f", "file", A, 1, mode)]))


def test_a_name_listed_twice_is_refused() -> None:
    bad = encode_tree([TreeEntry("f", "file", A, 1), TreeEntry("f", "dir", B, 1, "0755")])
    with pytest.raises(FormatError, match="listed twice"):
        decode_tree(bad)


def test_scanning_skips_git_and_cairn_directories_inside_data(tmp_path: Path) -> None:
    (tmp_path / "d" / ".git").mkdir(parents=True)
    (tmp_path / "d" / ".git" / "config").write_text("[core]\n")
    (tmp_path / "d" / "x").write_text("x")
    scan = scan_dir(tmp_path / "d", StatCache(tmp_path / "state.db"))
    assert list(scan.files) == ["x"]


def test_unknown_manifest_format_is_refused() -> None:
    with pytest.raises(FormatError, match="unknown manifest format"):
        decode_tree(b'{"entries":[],"format":2}')


def make_dataset(root: Path) -> None:
    for d in ("a", "a/deep", "b"):
        (root / d).mkdir(parents=True, exist_ok=True)
        for i in range(3):
            (root / d / f"f{i}").write_text(f"{d}/{i}")


def settled_dataset(tmp_path: Path) -> Path:
    """A dataset whose files were last written long ago: no racy timestamps."""
    data = tmp_path / "data"
    make_dataset(data)
    old = 1_000_000_000_000_000_000
    for dirpath, _, files in os.walk(data):
        for f in files:
            os.utime(os.path.join(dirpath, f), ns=(old, old))
    return data


def test_changing_one_file_rewrites_only_manifests_on_its_path(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_dataset(data)
    odb = ObjectDB.local(tmp_path / "cache")
    state = StatCache(tmp_path / "state.db")
    before = scan_dir(data, state, odb)
    (data / "a" / "deep" / "f0").write_text("changed")
    after = scan_dir(data, state, odb)
    new_manifests = set(after.manifests) - set(before.manifests)
    assert len(new_manifests) == 3  # a/deep, a, and the root; b's manifest is shared
    assert after.nfiles == before.nfiles == 9


def test_unchanged_files_are_not_rehashed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = settled_dataset(tmp_path)
    state = StatCache(tmp_path / "state.db")
    first = scan_dir(data, state)
    hashed: list[str] = []
    real = tree.hash_file
    monkeypatch.setattr(tree, "hash_file", lambda p, s=None: hashed.append(str(p)) or real(p, s))
    assert scan_dir(data, state).oid == first.oid
    assert hashed == []
    (data / "b" / "f1").write_text("new content")
    scan_dir(data, state)
    assert hashed == [str(data / "b" / "f1")]


def test_symlinked_directories_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_dataset(data)
    (data / "loop").symlink_to(data)
    with pytest.raises(PathError, match="symlink to a directory"):
        scan_dir(data, StatCache(tmp_path / "state.db"))


def test_unchanged_tree_is_answered_without_looking_at_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = settled_dataset(tmp_path)
    state = StatCache(tmp_path / "state.db")
    first = scan_dir(data, state)
    looked: list[str] = []
    monkeypatch.setattr(state, "load_prefix", lambda prefix: looked.append(prefix))
    again = scan_dir(data, state, want_files=False)
    assert (again.oid, again.size, again.nfiles) == (first.oid, first.size, first.nfiles)
    assert looked == [] and again.files == {}
    (data / "a" / "f1").write_text("changed!")  # same size, new mtime
    changed = scan_dir(data, state, want_files=False)
    assert changed.oid != first.oid and looked == [str(data)]


def test_racily_recorded_tree_is_not_trusted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_dataset(data)  # written just now: mtimes inside the racy window
    state = StatCache(tmp_path / "state.db")
    scan_dir(data, state)
    (data / "b" / "f0").write_text("b/X")  # same size, maybe the same timestamp tick
    assert scan_dir(data, state, want_files=False).files != {}
