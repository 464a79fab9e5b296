"""cairn.paths: the one validator of paths that come from a repository or the network."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn import paths
from cairn.errors import PathError

COMPONENTS = st.sampled_from(["a", "b", ".", "..", "", ".git", ".GIT", ".cairn", "git~1",
                              ".g\u200cit", ".git.", "x y", "-", "日本"])


@given(st.lists(COMPONENTS, max_size=6), st.booleans())
def test_an_accepted_path_stays_inside_and_out_of_git_and_cairn(parts: list[str],
                                                                absolute: bool) -> None:
    text = ("/" if absolute else "") + "/".join(parts)
    try:
        clean = paths.clean(text, "test")
    except PathError as e:
        assert "test: path" in str(e) and "\n" not in str(e)
        return
    assert not clean.startswith("/") and clean != "."
    assert posixpath.normpath(posixpath.join("/root", clean)).startswith("/root/")
    assert clean == posixpath.normpath(clean)
    assert not any(paths.is_reserved(part) for part in clean.split("/"))


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../../x", ".git/config",
                                  "sub/.git/hooks/pre-commit", ".cairn/config.local.toml",
                                  "a/.CAIRN/x", "a\0b", "", ".", "a/GIT~1/config"])
def test_bad_paths_are_refused(path: str) -> None:
    assert paths.problem(path) is not None


@pytest.mark.parametrize(("path", "clean"), [("a//b/./c/", "a/b/c"), ("./a", "a"),
                                             (".gitignore", ".gitignore"),
                                             (".github/workflows/ci.yml",
                                              ".github/workflows/ci.yml"),
                                             ("a\\b", "a\\b")])
def test_good_paths_are_normalised(path: str, clean: str) -> None:
    assert paths.clean(path, "x") == clean


@given(st.lists(st.sampled_from(["a", ".", "..", "", "b.", ".c"]), max_size=6))
def test_normalise_drops_empty_and_dot_components_whatever_the_shortcut(parts: list[str]
                                                                         ) -> None:
    path = "/".join(parts)
    expected = "/".join(p for p in path.split("/") if p not in ("", ".")) or "."
    assert paths.normalise(path) == expected


def test_the_root_is_allowed_only_when_asked() -> None:
    assert paths.problem(".") is not None
    assert paths.problem(".", root_ok=True) is None


def test_disk_check_refuses_symlinks_that_leave(tmp_path: Path) -> None:
    root, outside = tmp_path / "ws", tmp_path / "outside"
    (root / "real").mkdir(parents=True)
    outside.mkdir()
    os.symlink(outside, root / "out")
    os.symlink("real", root / "alias")
    os.symlink(".git", root / "g")
    (root / ".git").mkdir()
    workspace = paths.Root(root)
    assert workspace.check("alias/x", "w") == root / "alias" / "x"
    assert workspace.check("missing/deeper/x", "w") == root / "missing" / "deeper" / "x"
    for bad, why in [("out/x", "goes through the symlink out"), ("out", "is a symlink"),
                     ("g/config", "inside .git/")]:
        with pytest.raises(PathError, match=why):
            workspace.check(bad, "w")


def test_a_final_symlink_may_point_at_a_cache_object(tmp_path: Path) -> None:
    root, objects = tmp_path / "ws", tmp_path / "cache" / "objects"
    root.mkdir()
    (objects / "ab").mkdir(parents=True)
    (objects / "ab" / "cd").write_text("x")
    os.symlink(objects / "ab" / "cd", root / "f")
    os.symlink(objects / "ab", root / "d")
    assert paths.Root(root, objects).check("f", "w") == root / "f"
    with pytest.raises(PathError):  # a directory through the cache is not a cache object
        paths.Root(root, objects).check("d/cd", "w")
    with pytest.raises(PathError):
        paths.Root(root).check("f", "w")
