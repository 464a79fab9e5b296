"""`cairn add` of names git reads specially: the .gitignore line ignores exactly that
file, the printed `git add` stages exactly its pointer and .gitignore, and names no
.gitignore line can match are refused before anything is written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import CliRepo

# name, and a sibling a wrong pattern would ignore too (or instead)
AWKWARD = [
    ("#a", "a"), ("!a", "a"), ("a ", "a"), ("a  ", "a "), (" a", "a"), ("a b", "a"),
    ("a?b", "acb"), ("a*", "ab"), ("**", "ab"), ("a[b]", "ab"), ("[ab]", "a"),
    ("a\\b", "ab"), ("\\", "a"), ("a\\ ", "a\\"), ("a\t", "a"), ("it's", "its"),
    ('a"b', "ab"), ("$HOME", "HOME"), ("`x`", "x"), ("-n", "n"), (":x", "x"),
    ("héllo wörld", "héllo"), ("模型.bin", "模型"),
]


def ignored(repo: CliRepo, rel: str) -> bool:
    # ./ keeps a leading ':' from being read as pathspec magic
    return subprocess.run(["git", "check-ignore", "-q", "--", f"./{rel}"],
                          cwd=repo.root).returncode == 0


def hint(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.startswith("    git add ")]
    assert len(lines) == 1, output
    return lines[0]


def staged(repo: CliRepo) -> set[str]:
    return set(filter(None, repo.git("diff", "--cached", "--name-only", "-z").split("\0")))


@pytest.mark.parametrize(("name", "sibling"), AWKWARD, ids=[repr(n) for n, _ in AWKWARD])
def test_exactly_that_name_is_ignored_and_staged(repo: CliRepo, name: str,
                                                sibling: str) -> None:
    repo.write(name, "data")
    repo.write(sibling, "other")
    repo.write(f"{sibling}.cairn", "not a pointer")  # a glob `git add` would take too
    result = repo.cairn("add", "--", name)

    assert ignored(repo, name)
    assert not ignored(repo, sibling)
    subprocess.run(["sh", "-c", hint(result.output)], cwd=repo.root, check=True)
    assert staged(repo) == {f"{name}.cairn", ".gitignore"}


def test_a_directory_with_an_awkward_name(repo: CliRepo, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    repo.write("my data [v2]/it's a*.csv", "data")
    repo.write("my data [v2]/it's ab.csv", "other")
    repo.write("my data [v2]/it's ab.csv.cairn", "not a pointer")
    monkeypatch.chdir(repo.root / "my data [v2]")
    result = repo.cairn("add", "it's a*.csv")

    assert ignored(repo, "my data [v2]/it's a*.csv")
    assert not ignored(repo, "my data [v2]/it's ab.csv")
    subprocess.run(["sh", "-c", hint(result.output)], cwd=Path.cwd(), check=True)
    assert staged(repo) == {"my data [v2]/it's a*.csv.cairn", "my data [v2]/.gitignore"}


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", ["a\nb", "a\r", "\rb", "a\r\nb", "\n"])
def test_a_name_no_gitignore_line_can_match_is_refused(repo: CliRepo, name: str) -> None:
    repo.write(name, "data")
    repo.write("good.txt", "good")
    cache = files_under(repo.root / ".cairn" / "cache")
    result = repo.cairn("add", "good.txt", name, ok=False)

    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {name!r}: "), result.stderr
    assert "newline or carriage return" in lines[0]
    assert not (repo.root / ".gitignore").exists()
    assert not (repo.root / f"{name}.cairn").exists()
    assert not (repo.root / "good.txt.cairn").exists()  # nothing half done
    assert files_under(repo.root / ".cairn" / "cache") == cache  # no object stored


def test_the_repro_hint_is_quoted_too(repo: CliRepo) -> None:
    repo.write("in.txt", "x")
    repo.write("dvc.yaml", "stages:\n  copy:\n"
               "    cmd: mkdir -p 'out [1]' && cp in.txt 'out [1]/a b'\n"
               "    deps: [in.txt]\n    outs: ['out [1]/a b']\n")
    repo.git("add", "dvc.yaml", "in.txt")
    result = repo.cairn("repro")
    subprocess.run(["sh", "-c", hint(result.output)], cwd=repo.root, check=True)
    assert staged(repo) == {"dvc.yaml", "in.txt", "cairn.lock", "out [1]/.gitignore"}
    assert ignored(repo, "out [1]/a b")


@pytest.mark.parametrize(("name", "sibling"), [("a*", "ab"), (":x", "x"), ("[ab]", "a")])
def test_autostage_and_the_tracked_check_read_names_literally(repo: CliRepo, name: str,
                                                              sibling: str) -> None:
    """git reads pathspecs as patterns: `git add 'a*.cairn'` would stage ab.cairn too, and
    `git ls-files 'a*'` calls `a*` tracked when only `ab` is."""
    repo.write(sibling, "tracked by git")
    repo.git("add", "--", sibling)
    repo.git("commit", "-qm", "sibling")
    repo.write(f"{sibling}.cairn", "not staged: a look-alike")
    repo.cairn("config", "core.autostage", "true")
    repo.write(name, "data")
    repo.cairn("add", name)  # not refused as "already tracked by git"
    assert staged(repo) == {f"{name}.cairn", ".gitignore"}


def test_a_name_that_is_not_utf8_is_refused(repo: CliRepo) -> None:
    """Before: an internal error from the stat cache (surrogates in the name)."""
    import os

    name = os.fsdecode(b"lat\xe9.bin")
    (repo.root / name).write_bytes(b"data")
    (repo.root / os.fsdecode(b"dir/sub\xff")).mkdir(parents=True)
    (repo.root / os.fsdecode(b"dir/sub\xff/f")).write_bytes(b"data")
    for target, shown in ((name, "lat\\xe9.bin"), ("dir", "sub\\xff")):
        proc = repo.cairn_process("add", target)
        assert proc.returncode == 2, proc.stderr
        assert f"'{shown}' is not valid UTF-8" in proc.stderr
        assert "internal error" not in proc.stderr
    assert not list(repo.root.glob("?*.cairn"))
