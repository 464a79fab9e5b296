"""add / status / commit / checkout / unprotect through the CLI, in real git repositories."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from cairn.objects.hashing import hash_bytes
from cairn.project import pointer
from tests.conftest import CliRepo


def test_add_file_writes_pointer_gitignore_and_says_what_to_git_add(repo: CliRepo) -> None:
    repo.write("models/classifier.pkl", b"weights v1")
    result = repo.cairn("add", "models/classifier.pkl")
    assert "git add models/.gitignore models/classifier.pkl.cairn" in result.output
    ptr = pointer.load(repo.root / "models" / "classifier.pkl.cairn")
    assert [(o.path, o.digest, o.size) for o in ptr.outs] == [
        ("classifier.pkl", hash_bytes(b"weights v1"), 10)]
    assert (repo.root / "models" / ".gitignore").read_text() == "/classifier.pkl\n"
    assert repo.git("status", "--porcelain", "--untracked-files=all").split("\n").count(
        "?? models/classifier.pkl") == 0
    repo.cairn("add", "models/classifier.pkl")  # again: harmless, nothing duplicated
    assert (repo.root / "models" / ".gitignore").read_text() == "/classifier.pkl\n"


def test_autostage_stages_pointer_and_gitignore(repo: CliRepo) -> None:
    repo.cairn("config", "core.autostage", "true")
    repo.write("data.csv", "a,b\n1,2\n")
    assert "Staged in git" in repo.cairn("add", "data.csv").output
    staged = repo.git("diff", "--cached", "--name-only").split()
    assert staged == [".gitignore", "data.csv.cairn"]


def test_status_reports_changes_without_rehashing_clean_files(repo: CliRepo) -> None:
    repo.write("data/a.txt", "a")
    repo.write("data/b.txt", "b")
    repo.write("model.bin", "m")
    repo.cairn("add", "data", "model.bin")
    assert "up to date" in repo.cairn("status").output
    repo.write("data/a.txt", "A")
    repo.write("data/c.txt", "c")
    (repo.root / "model.bin").unlink()
    report = json.loads(repo.cairn("status", "--json").output)
    assert report["data"]["state"] == "modified"
    assert report["data"]["added"] == ["c.txt"] and report["data"]["modified"] == ["a.txt"]
    assert report["model.bin"]["state"] == "deleted"


def test_commit_records_current_content(repo: CliRepo) -> None:
    repo.write("model.bin", "v1")
    repo.cairn("add", "model.bin")
    repo.write("model.bin", "v2")
    assert "Updated model.bin.cairn" in repo.cairn("commit").output
    assert pointer.load(repo.root / "model.bin.cairn").outs[0].digest == hash_bytes(b"v2")
    assert "up to date" in repo.cairn("status").output


def test_git_checkout_of_older_tag_restores_bytes_through_the_hook(repo: CliRepo) -> None:
    files = {f"data/part{i // 100}/f{i}.txt": f"row {i}\n" for i in range(1000)}
    for rel, text in files.items():
        repo.write(rel, text)
    repo.write("model.pkl", "model v1")
    repo.cairn("add", "data", "model.pkl")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "v1")
    repo.git("tag", "model-v1")
    repo.write("model.pkl", "model v2")
    repo.write("data/part3/f300.txt", "changed\n")
    (repo.root / "data/part9/f999.txt").unlink()
    repo.cairn("add", "data", "model.pkl")
    repo.git("commit", "-qam", "v2")

    repo.git("checkout", "-q", "model-v1")  # the post-checkout hook runs `cairn checkout`
    assert (repo.root / "model.pkl").read_text() == "model v1"
    for rel, text in files.items():
        assert (repo.root / rel).read_text() == text
    assert "up to date" in repo.cairn("status").output
    repo.git("checkout", "-q", "main")
    assert (repo.root / "model.pkl").read_text() == "model v2"
    assert not (repo.root / "data/part9/f999.txt").exists()


def test_checkout_keeps_uncommitted_work_unless_forced(repo: CliRepo) -> None:
    repo.write("model.pkl", "v1")
    repo.cairn("add", "model.pkl")
    repo.write("model.pkl", "precious unsaved edit")
    result = repo.cairn("checkout", ok=False)
    assert result.exit_code == 1
    assert "would overwrite uncommitted changes in model.pkl" in result.stderr
    assert (repo.root / "model.pkl").read_text() == "precious unsaved edit"
    repo.cairn("checkout", "--force")
    assert (repo.root / "model.pkl").read_text() == "v1"


def test_corrupt_cache_object_is_refused_on_checkout(repo: CliRepo) -> None:
    repo.write("model.pkl", "good bytes")
    repo.cairn("add", "model.pkl")
    obj = repo.root / ".cairn/cache/objects" / hash_bytes(b"good bytes")[:2] / \
        hash_bytes(b"good bytes")[2:]
    os.chmod(obj, 0o644)
    obj.write_bytes(b"good bytez")
    (repo.root / "model.pkl").unlink()
    result = repo.cairn("checkout", ok=False)
    assert result.exit_code == 1
    assert "refused 1 corrupt cache object(s) for model.pkl" in result.stderr
    assert not (repo.root / "model.pkl").exists()
    assert not obj.exists()
    assert (repo.root / ".cairn/cache/quarantine" / hash_bytes(b"good bytes")).exists()


@pytest.mark.parametrize("link_type", ["hardlink", "symlink"])
def test_linked_workspace_files_are_read_only_until_unprotected(repo: CliRepo,
                                                                link_type: str) -> None:
    repo.cairn("config", "cache.type", link_type)
    repo.write("model.pkl", "weights")
    repo.cairn("add", "model.pkl")
    path = repo.root / "model.pkl"
    obj = repo.root / ".cairn/cache/objects" / hash_bytes(b"weights")[:2] / \
        hash_bytes(b"weights")[2:]
    assert os.stat(path).st_ino == obj.stat().st_ino
    assert not os.stat(path).st_mode & stat.S_IWUSR
    repo.cairn("unprotect", "model.pkl")
    assert not path.is_symlink() and os.stat(path).st_ino != obj.stat().st_ino
    path.write_text("edited")
    assert obj.read_text() == "weights"
    assert "modified" in repo.cairn("status").output


def one_error_line(result_stderr: str) -> str:
    lines = result_stderr.strip().splitlines()
    assert len(lines) == 1, result_stderr
    assert "Traceback" not in result_stderr
    return lines[0]


@pytest.mark.parametrize(("setup", "args", "message"), [
    (None, ["add", "../outside.txt"], "outside the repository"),
    (None, ["add", ".git"], r"inside .git/, which git manages; Cairn never tracks"),
    (None, ["add", "missing.bin"], "missing.bin: no such file or directory"),
    ("tracked_dir", ["add", "data/a.txt"], r"inside the tracked directory data; run `cairn commit"),
    ("tracked_dir", ["add", "data.cairn"], "is a pointer file"),
    ("git_file", ["add", "code.py"], r"already tracked by git; run `git rm -r --cached code.py`"),
    ("bad_pointer", ["status"], r"model.pkl.cairn:4: out 'digest'"),
    (None, ["checkout", "nothing"],
     r"nothing: not tracked by Cairn .*; track it with `cairn add nothing`"),
    (None, ["config", "core.nope", "1"], r"unknown config key 'core.nope'"),
])
def test_bad_input_is_one_clear_line(repo: CliRepo, setup: str | None, args: list[str],
                                     message: str) -> None:
    if setup == "tracked_dir":
        repo.write("data/a.txt", "a")
        repo.cairn("add", "data")
    elif setup == "git_file":
        repo.write("code.py", "print()")
        repo.git("add", "code.py")
    elif setup == "bad_pointer":
        repo.write("model.pkl.cairn", "outs:\n- path: model.pkl\n  size: 1\n  digest: 1234\n")
    result = repo.cairn(*args, ok=False)
    assert result.exit_code == (1 if args[0] == "checkout" else 2)  # not found vs bad input
    line = one_error_line(result.stderr)
    assert line.startswith("error: ")
    assert re.search(message, line), line


def test_outside_any_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRepo(tmp_path).cairn("status", ok=False)
    assert result.exit_code == 1
    assert "not inside a Cairn repository; run `cairn init`" in one_error_line(result.stderr)


def test_init_lays_out_the_repository_and_hooks(repo: CliRepo) -> None:
    dot = repo.root / ".cairn"
    assert (dot / "config.toml").read_text() == "format = 1\n"
    assert (dot / ".gitignore").read_text() == ("/cache/\n/tmp/\n/config.local.toml\n"
                                                "/cairn.db*\n")
    assert (dot / "cache").is_dir() and (dot / "tmp").is_dir()
    for hook in ("post-checkout", "post-merge", "pre-push"):
        script = repo.root / ".git" / "hooks" / hook
        assert os.access(script, os.X_OK)
        assert f"-m cairn git-hook {hook}" in script.read_text()
    repo.git("add", ".cairn")
    assert repo.git("diff", "--cached", "--name-only").split() == [".cairn/.gitignore",
                                                                   ".cairn/config.toml"]
    assert "Reinitialized" in repo.cairn("init").output


def test_init_leaves_someone_elses_hook_alone(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import git

    root = tmp_path / "proj"
    root.mkdir()
    git(root, "init", "-q")
    own = root / ".git" / "hooks" / "pre-push"
    own.write_text("#!/bin/sh\necho mine\n")
    monkeypatch.chdir(root)
    result = CliRepo(root).cairn("init")
    assert "left your own .git/hooks/pre-push alone" in result.stderr
    assert own.read_text() == "#!/bin/sh\necho mine\n"


def test_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    monkeypatch.chdir(root)
    plain = CliRepo(root)
    assert "git init" in plain.cairn("init", ok=False).stderr
    plain.cairn("init", "--no-scm")
    plain.write("model.bin", "weights")
    assert "git add" not in plain.cairn("add", "model.bin").output
    (root / "model.bin").unlink()
    plain.cairn("checkout")
    assert (root / "model.bin").read_text() == "weights"


def test_global_config_outside_a_repository(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    anywhere = CliRepo(tmp_path)
    anywhere.cairn("config", "--global", "core.jobs", "4")
    assert anywhere.cairn("config", "--global", "core.jobs").output.strip() == "4"
    result = anywhere.cairn("config", "core.jobs", "2", ok=False)
    assert "not inside a Cairn repository" in result.stderr


def test_checkout_when_a_directory_inside_became_a_file(repo: CliRepo) -> None:
    # Regression: the emptied directory was taken for a conflict on the first checkout.
    repo.write("d/a/f", "inside")
    repo.cairn("add", "d")
    as_dir = (repo.root / "d.cairn").read_bytes()
    repo.cairn("unprotect", "d")
    (repo.root / "d/a/f").unlink()
    (repo.root / "d/a").rmdir()
    repo.write("d/a", "now a file")
    repo.cairn("commit", "d")
    as_file = (repo.root / "d.cairn").read_bytes()
    (repo.root / "d.cairn").write_bytes(as_dir)
    repo.cairn("checkout", "--force")
    assert (repo.root / "d/a/f").read_text() == "inside"
    (repo.root / "d.cairn").write_bytes(as_file)
    repo.cairn("checkout")  # the workspace holds only committed bytes: no conflict
    assert (repo.root / "d/a").read_text() == "now a file"


def test_status_of_a_symlink_whose_object_is_gone(repo: CliRepo) -> None:
    # Regression: a dangling link (cache.type symlink, object quarantined) crashed status.
    repo.cairn("config", "cache.type", "symlink")
    repo.write("model.bin", "weights")
    repo.cairn("add", "model.bin")
    obj = repo.root / ".cairn/cache/objects" / hash_bytes(b"weights")[:2] / \
        hash_bytes(b"weights")[2:]
    obj.unlink()
    report = json.loads(repo.cairn("status", "--json").output)
    assert report["model.bin"]["state"] == "deleted"


def test_dangling_links_in_a_tracked_directory_are_repaired_by_checkout(repo: CliRepo) -> None:
    # Regression: with cache.type symlink, a quarantined object left a dangling link
    # that made status and checkout (and so pull) fail.
    repo.cairn("config", "cache.type", "symlink")
    repo.write("d/a.txt", "a")
    repo.write("d/b.txt", "b")
    repo.cairn("add", "d")
    obj = repo.root / ".cairn/cache/objects" / hash_bytes(b"a")[:2] / hash_bytes(b"a")[2:]
    obj.unlink()
    report = json.loads(repo.cairn("status", "--json").output)
    assert report["d"]["deleted"] == ["a.txt"]
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_bytes(b"a")  # as `cairn pull` would bring it back
    repo.cairn("checkout")
    assert (repo.root / "d/a.txt").read_text() == "a"


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_socket(path: Path) -> None:
    import socket

    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()  # the socket file stays


@pytest.mark.parametrize(("make", "kind"), [(make_fifo, "FIFO (named pipe)"),
                                            (make_socket, "UNIX socket")])
def test_add_refuses_what_is_neither_a_file_nor_a_directory(repo: CliRepo, make: object,
                                                            kind: str) -> None:
    """Before, `cairn add` of a FIFO waited forever for a writer; of a socket it was an
    internal error. A child process, so a hang shows as a timeout, not a stuck suite."""
    assert callable(make)
    make(repo.root / "special")
    proc = repo.cairn_process("add", "special", timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"error: special: is a {kind}; Cairn tracks regular "
                                   "files and directories")
    assert not (repo.root / "special.cairn").exists()
