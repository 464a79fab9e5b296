"""A repository someone else wrote can never make Cairn write outside its workspace.

Each test is one attack: an attacker commits a path (in a pointer file, a cairn.lock, a
directory manifest on the shared remote, or a pipeline file) that escapes — absolute,
climbing with `..`, into .git/ or .cairn/, through a symlinked parent committed to git,
or through a final symlink committed to git — and a victim clones the repository and
runs checkout, pull, pull --force, get, repro, or just `git checkout` with the hooks.
Afterwards nothing outside the workspace changed (a sentinel tree, hashed before and
after), nothing in .git/ or .cairn/ changed, and the command said so in one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cairn.objects.hashing import hash_bytes
from cairn.objects.tree import TreeEntry, encode_tree
from tests.conftest import CliRepo, commit, git, make_repo

PAYLOAD = b"attacker's bytes\n"
ESCAPES = ["absolute", "dotdot", "into-git", "into-cairn", "symlinked-parent",
           "final-symlink"]


def tree_digest(root: Path) -> str:
    """Every name, kind, mode and byte below `root` (symlinks as their targets' text)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames
                                        if os.path.islink(os.path.join(dirpath, d))]):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            h.update(f"{rel}\0{st.st_mode:o}\0".encode())
            h.update(os.readlink(path).encode() if os.path.islink(path)
                     else Path(path).read_bytes())
        h.update(f"dir {os.path.relpath(dirpath, root)}\n".encode())
    return h.hexdigest()


@dataclass
class World:
    """The attacker's repository, the shared remote, and the sentinel tree outside."""

    tmp: Path
    attacker: CliRepo
    remote: Path
    outside: Path

    def escape_path(self, escape: str, base: str = "") -> str:
        """The path an attacker writes for `escape`, as seen from directory `base`."""
        up = "../" * (base.count("/") + 1 if base else 0)
        return {
            "absolute": str(self.outside / "evil"),
            "dotdot": f"{up}../outside/evil",
            "into-git": ".git/hooks/post-commit",
            "into-cairn": ".cairn/config.local.toml",
            "symlinked-parent": "link/evil",
            "final-symlink": "evil",
        }[escape]

    def plant_links(self, escape: str, where: str = "") -> None:
        """The symlinks the escape goes through, committed to git (forced past ignores)."""
        work = self.attacker.root
        if escape == "symlinked-parent":
            link = work / where / "link"
            target = "../" * where.count("/") + ("../" if where else "") + "../outside"
        elif escape == "final-symlink":
            link = work / where / "evil"
            target = "../" * where.count("/") + ("../" if where else "") + "../outside/s.txt"
        else:
            return
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)
        self.attacker.git("add", "-f", str(link.relative_to(work)))


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "s.txt").write_text("sentinel\n")
    (outside / "dir" / "a").write_text("a\n")
    remote = tmp_path / "remote"
    attacker = make_repo(tmp_path / "attacker")
    monkeypatch.chdir(attacker.root)
    attacker.cairn("remote", "add", "-d", "shared", str(remote))
    attacker.write("f.txt", PAYLOAD)
    attacker.write("d/inner.txt", PAYLOAD)
    attacker.cairn("add", "f.txt", "d")
    attacker.cairn("push")
    commit(attacker, "good", tag="good")
    yield World(tmp_path, attacker, remote, outside)


def digest_of(repo: CliRepo, pointer: str) -> tuple[str, int, int | None]:
    text = (repo.root / pointer).read_text()
    fields = dict(line.strip("- ").split(": ", 1) for line in text.splitlines()[1:])
    return fields["digest"], int(fields["size"]), (int(fields["nfiles"]) if "nfiles" in fields
                                                   else None)


def pointer_text(path: str, digest: str, size: int, nfiles: int | None = None) -> str:
    extra = f"  nfiles: {nfiles}\n" if nfiles is not None else ""
    return (f"outs:\n- path: {json.dumps(path)}\n  hash: blake3\n  digest: {digest}\n"
            f"  size: {size}\n{extra}")


def lock_text(path: str, digest: str, size: int) -> str:
    return (f"schema: cairn-lock/1\nstages:\n  train:\n    cmd: echo\n    outs:\n"
            f"    - path: {json.dumps(path)}\n      digest: {digest}\n      size: {size}\n")


# -- what the attacker commits -----------------------------------------------------------

def plant_pointer_file(world: World, escape: str) -> None:
    digest, size, _ = digest_of(world.attacker, "f.txt.cairn")
    world.plant_links(escape)
    world.attacker.write("x.cairn", pointer_text(world.escape_path(escape), digest, size))


def plant_pointer_dir(world: World, escape: str) -> None:
    """A tracked directory whose out path escapes (the dir itself a symlink out, etc.)."""
    digest, size, nfiles = digest_of(world.attacker, "d.cairn")
    path = world.escape_path(escape)
    if escape == "final-symlink":  # the tracked directory itself is a symlink out
        os.symlink("../outside/dir", world.attacker.root / "evil")
        world.attacker.git("add", "-f", "evil")
    else:
        world.plant_links(escape)
    world.attacker.write("x.cairn", pointer_text(path, digest, size, nfiles))


def plant_lock(world: World, escape: str) -> None:
    """A lock in a subdirectory: its paths are relative to it, `../` included."""
    digest, size, _ = digest_of(world.attacker, "f.txt.cairn")
    world.plant_links(escape, "sub")
    path = {"into-git": "../.git/hooks/post-commit",
            "into-cairn": "../.cairn/config.local.toml"}.get(escape) or \
        world.escape_path(escape, "sub")
    world.attacker.write("sub/cairn.lock", lock_text(path, digest, size))


SOURCES: dict[str, Callable[[World, str], None]] = {
    "pointer-file": plant_pointer_file,
    "pointer-dir": plant_pointer_dir,
    "cairn.lock": plant_lock,
}


# -- the victim ----------------------------------------------------------------------------

@dataclass
class Victim:
    repo: CliRepo
    world: World
    before: dict[str, str]

    def snapshot(self) -> dict[str, str]:
        root = self.repo.root
        state = {"outside": tree_digest(self.world.outside),
                 "git hooks": tree_digest(root / ".git" / "hooks"),
                 "git config": (root / ".git" / "config").read_text(),
                 ".cairn": "|".join(sorted(p.name for p in (root / ".cairn").iterdir()))}
        for name in ("config.toml", "config.local.toml"):
            path = root / ".cairn" / name
            state[name] = path.read_text() if path.exists() else "<absent>"
        return state

    def assert_untouched(self) -> None:
        assert self.snapshot() == self.before


def victim_of(world: World, monkeypatch: pytest.MonkeyPatch) -> Victim:
    """A clone at the good commit with its data pulled and hooks installed, then moved to
    the attacker's commit without running any hook."""
    git(world.tmp, "clone", "-q", str(world.attacker.root), "victim")
    repo = CliRepo(world.tmp / "victim")
    monkeypatch.chdir(repo.root)
    repo.git("checkout", "-q", "good")
    repo.cairn("install-hooks")
    repo.cairn("pull")
    repo.git("-c", "core.hooksPath=/dev/null", "checkout", "-q", "main")
    return Victim(repo, world, {})


def attack(world: World, source: str, escape: str) -> None:
    SOURCES[source](world, escape)
    commit(world.attacker, f"attack: {source} {escape}")


OPERATIONS = {
    "checkout": ["checkout"],
    "checkout --force": ["checkout", "--force"],
    "pull": ["pull"],
    "pull --force": ["pull", "--force"],
    "status": ["status"],
}


@pytest.mark.slow
@pytest.mark.parametrize("escape", ESCAPES)
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_workspace_commands_never_write_outside(world: World, monkeypatch: pytest.MonkeyPatch,
                                                source: str, escape: str,
                                                operation: str) -> None:
    attack(world, source, escape)
    victim = victim_of(world, monkeypatch)
    victim.before = victim.snapshot()
    result = victim.repo.cairn(*OPERATIONS[operation], ok=False)
    assert result.exit_code == 2, result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "x.cairn" in lines[0] or "sub/cairn.lock" in lines[0], lines[0]
    assert "internal error" not in result.stderr
    victim.assert_untouched()


@pytest.mark.slow
@pytest.mark.parametrize("escape", ESCAPES)
@pytest.mark.parametrize("source", SOURCES)
def test_the_post_checkout_hook_never_writes_outside(world: World,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    source: str, escape: str) -> None:
    """`git checkout` alone runs `cairn checkout` through the hook: it warns, git goes on."""
    attack(world, source, escape)
    victim = victim_of(world, monkeypatch)
    victim.repo.git("-c", "core.hooksPath=/dev/null", "checkout", "-q", "good")
    victim.before = victim.snapshot()
    proc = subprocess.run(["git", "checkout", "-q", "main"], cwd=victim.repo.root,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "cairn: data not updated after git checkout" in proc.stderr
    assert "x.cairn" in proc.stderr or "sub/cairn.lock" in proc.stderr, proc.stderr
    victim.assert_untouched()


# -- directory manifests on the shared remote ------------------------------------------------

def put_object(world: World, data: bytes) -> str:
    """An object written straight into the shared remote (and the attacker's cache)."""
    oid = hash_bytes(data)
    for base in (world.remote, world.attacker.root / ".cairn" / "cache"):
        path = base / "objects" / oid[:2] / oid[2:]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return oid


MANIFEST_ESCAPES = ["dotdot-entry", "git-entry", "cairn-entry", "GIT-entry",
                    "symlinked-subdir", "final-symlink", "setuid-mode"]


def plant_manifest(world: World, escape: str) -> None:
    """d.cairn now names a manifest the attacker wrote to the remote."""
    payload = put_object(world, PAYLOAD)
    hooks = put_object(world, encode_tree([TreeEntry("post-commit", "file", payload,
                                                     len(PAYLOAD), "0755")]))
    inner = put_object(world, encode_tree([TreeEntry("evil", "file", payload, len(PAYLOAD))]))
    entries = {
        "dotdot-entry": [TreeEntry("..", "dir", inner, len(PAYLOAD), "0755")],
        "git-entry": [TreeEntry(".git", "dir", put_object(world, encode_tree(
            [TreeEntry("hooks", "dir", hooks, len(PAYLOAD), "0755")])), 1, "0755")],
        "cairn-entry": [TreeEntry(".cairn", "dir", inner, len(PAYLOAD), "0755")],
        "GIT-entry": [TreeEntry(".GIT", "dir", inner, len(PAYLOAD), "0755")],
        "symlinked-subdir": [TreeEntry("sub", "dir", inner, len(PAYLOAD), "0755")],
        "final-symlink": [TreeEntry("evil", "file", payload, len(PAYLOAD))],
        "setuid-mode": [TreeEntry("evil", "file", payload, len(PAYLOAD), "4755")],
    }[escape]
    top = put_object(world, encode_tree(entries))
    if escape == "symlinked-subdir":
        os.symlink("../../outside", world.attacker.root / "d" / "sub")
        world.attacker.git("add", "-f", "d/sub")
    elif escape == "final-symlink":
        (world.attacker.root / "d" / "inner.txt").unlink()
        os.symlink("../../outside/s.txt", world.attacker.root / "d" / "evil")
        world.attacker.git("add", "-f", "d/evil")
    world.attacker.write("d.cairn", pointer_text("d", top, len(PAYLOAD), 1))


@pytest.mark.slow
@pytest.mark.parametrize("escape", MANIFEST_ESCAPES)
@pytest.mark.parametrize("operation", ["checkout --force", "pull", "pull --force", "get"])
def test_manifests_never_write_outside(world: World, monkeypatch: pytest.MonkeyPatch,
                                       escape: str, operation: str) -> None:
    plant_manifest(world, escape)
    commit(world.attacker, f"attack: manifest {escape}")
    victim = victim_of(world, monkeypatch) if operation != "get" else None
    if victim is None:  # `cairn get` of the attacker's repository, from somewhere else
        elsewhere = make_repo(world.tmp / "elsewhere")
        monkeypatch.chdir(elsewhere.root)
        elsewhere.cairn("remote", "add", "-d", "shared", str(world.remote))
        victim = Victim(elsewhere, world, {})
        victim.before = victim.snapshot()
        result = elsewhere.cairn("get", str(world.attacker.root), "d", "--rev", "main",
                                 "-o", "got", ok=False)
        got = elsewhere.root / "got"
        if result.exit_code == 0:  # only the harmless variants may arrive, inside -o
            assert escape in ("symlinked-subdir", "final-symlink"), result.output
            assert not any(p.is_symlink() or p.stat().st_mode & 0o6000
                           for p in got.rglob("*"))
        else:
            assert not got.exists()
    else:
        if operation == "checkout --force":
            victim.repo.cairn("fetch", "d", ok=False)
        victim.before = victim.snapshot()
        result = victim.repo.cairn(*OPERATIONS[operation], ok=False)
        assert result.exit_code != 0, result.output
        d = victim.repo.root / "d"
        assert not (d / ".git").exists() and not (d / ".GIT").exists()
        assert not (d / ".cairn").exists()
        assert not any(p.stat().st_mode & 0o6000 for p in d.rglob("*") if p.is_file())
    assert "internal error" not in result.stderr
    victim.assert_untouched()


# -- pipelines: repro, restoring from the run cache ---------------------------------------------

def stage_out(world: World, escape: str) -> str:
    return world.escape_path(escape) if escape not in ("symlinked-parent", "final-symlink") \
        else {"symlinked-parent": "outdir/model.bin", "final-symlink": "model.bin"}[escape]


@pytest.mark.slow
@pytest.mark.parametrize("escape", ESCAPES)
def test_repro_never_writes_outside(world: World, monkeypatch: pytest.MonkeyPatch,
                                    escape: str) -> None:
    """The attacker ran the stage honestly (its run-cache entry is on the shared remote),
    then committed an out that escapes; the victim's repro refuses before restoring or
    running anything."""
    attacker = world.attacker
    out = stage_out(world, escape)
    honest = out if escape in ("symlinked-parent", "final-symlink") else "model.bin"
    attacker.write("cairn.yaml", f"stages:\n  train:\n    cmd: python -c \"import os; "
                   f"os.makedirs(os.path.dirname('{honest}') or '.', exist_ok=True); "
                   f"open('{honest}', 'wb').write(b'model')\"\n    deps: [f.txt]\n"
                   f"    outs: [{json.dumps(honest)}]\n")
    attacker.cairn("repro")
    attacker.cairn("push", "--run-cache")
    (attacker.root / "cairn.lock").unlink()
    if escape == "symlinked-parent":
        attacker.cairn("checkout")  # keep git's view simple: the out dir is replaced
        os.rename(attacker.root / "outdir", world.tmp / "honest-outdir")
        os.symlink("../outside", attacker.root / "outdir")
        attacker.git("add", "-f", "outdir")
    elif escape == "final-symlink":
        (attacker.root / "model.bin").unlink()
        os.symlink("../outside/s.txt", attacker.root / "model.bin")
        attacker.git("add", "-f", "model.bin")
    else:
        text = (attacker.root / "cairn.yaml").read_text().replace(json.dumps(honest),
                                                                  json.dumps(out))
        attacker.write("cairn.yaml", text)
    commit(attacker, f"attack: stage out {escape}")
    victim = victim_of(world, monkeypatch)
    victim.repo.cairn("fetch", "--run-cache", ok=False)
    victim.before = victim.snapshot()
    result = victim.repo.cairn("repro", ok=False)
    assert result.exit_code == 2, result.output + result.stderr
    assert "cairn.yaml" in result.stderr, result.stderr
    assert "internal error" not in result.stderr
    assert not (world.outside / "evil").exists()
    victim.assert_untouched()


# -- the rule itself, for every spelling -------------------------------------------------------

@pytest.mark.parametrize("spelling", [
    ".git", ".GIT", ".Git", ".git.", ".git ", "git~1", "GIT~1", ".g\u200cit", ".git\ufeff",
    ".git::$INDEX_ALLOCATION", ".cairn", ".CAIRN", ".cairn.", "CAIRN~1"])
def test_every_spelling_of_git_and_cairn_is_refused_in_a_pointer(repo: CliRepo,
                                                                 spelling: str) -> None:
    repo.write("f.txt", PAYLOAD)
    repo.cairn("add", "f.txt")
    digest, size, _ = digest_of(repo, "f.txt.cairn")
    repo.write("x.cairn", pointer_text(f"{spelling}/hooks/post-commit", digest, size))
    result = repo.cairn("checkout", ok=False)
    assert result.exit_code == 2
    assert "x.cairn" in result.stderr and "manages" in result.stderr
    assert not (repo.root / spelling / "hooks" / "post-commit").exists()


def test_a_refused_path_is_named_with_its_file_and_line(repo: CliRepo) -> None:
    repo.write("f.txt", PAYLOAD)
    repo.cairn("add", "f.txt")
    digest, size, _ = digest_of(repo, "f.txt.cairn")
    repo.write("x.cairn", "# a comment\n" + pointer_text("../../etc/passwd", digest, size))
    result = repo.cairn("checkout", ok=False)
    assert result.exit_code == 2
    assert "x.cairn:3: out 'path' '../../etc/passwd' climbs out of the workspace" \
        in result.stderr


def test_add_refuses_a_symlink_to_a_directory_outside(repo: CliRepo, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    os.symlink(outside, repo.root / "link")
    result = repo.cairn("add", "link", ok=False)
    assert result.exit_code == 2
    assert "link" in result.stderr and "leaves the workspace" in result.stderr
    assert not (repo.root / "link.cairn").exists()


def test_add_of_a_directory_never_reads_a_symlink_that_leaves(repo: CliRepo,
                                                              tmp_path: Path) -> None:
    """A symlink committed inside a directory someone later adds would send the file it
    points to (say ~/.aws/credentials) to the remote with the next push."""
    secret = tmp_path / "credentials"
    secret.write_text("aws_secret_access_key = hunter2\n")
    repo.write("data/rows.csv", "a,b\n")
    os.symlink(secret, repo.root / "data" / "creds")
    result = repo.cairn("add", "data", ok=False)
    assert result.exit_code == 2
    assert "data/creds" in result.stderr and "leaves the workspace" in result.stderr
    cache = repo.root / ".cairn" / "cache" / "objects"
    secret_oid = hash_bytes(secret.read_bytes())
    assert not (cache / secret_oid[:2] / secret_oid[2:]).exists()
    assert not (repo.root / "data.cairn").exists()


def test_a_symlink_inside_the_workspace_is_still_followed(repo: CliRepo) -> None:
    repo.write("real/rows.csv", "a,b\n")
    os.symlink("real", repo.root / "alias")
    repo.cairn("add", "alias/rows.csv")
    assert (repo.root / "real" / "rows.csv.cairn").exists() or \
        (repo.root / "alias" / "rows.csv.cairn").exists()


def test_add_never_reads_a_gitignore_that_is_a_symlink(repo: CliRepo, tmp_path: Path) -> None:
    """A committed .gitignore linked to a private file would have been read, extended by
    one line and left as a plain file for the next `git add` to commit."""
    private = tmp_path / "id_rsa"
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    os.symlink(private, repo.root / ".gitignore")
    repo.write("model.bin", PAYLOAD)
    result = repo.cairn("add", "model.bin", ok=False)
    assert result.exit_code == 2
    assert ".gitignore: is a symlink" in result.stderr
    assert (repo.root / ".gitignore").is_symlink()
    assert private.read_text() == "-----BEGIN OPENSSH PRIVATE KEY-----\n"


def test_a_pointer_file_that_is_a_symlink_out_is_not_read(repo: CliRepo,
                                                          tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.cairn"
    repo.write("f.txt", PAYLOAD)
    repo.cairn("add", "f.txt")
    digest, size, _ = digest_of(repo, "f.txt.cairn")
    outside.write_text(pointer_text("g.txt", digest, size))
    os.symlink(outside, repo.root / "g.txt.cairn")
    for command in (["checkout"], ["status"], ["checkout", "g.txt"]):
        result = repo.cairn(*command, ok=False)
        assert result.exit_code == 2, result.output
        assert "g.txt.cairn" in result.stderr and "leaves the workspace" in result.stderr
    assert not (repo.root / "g.txt").exists()


@pytest.mark.parametrize("key", ["deps", "params-file", "wdir", "vars", "metrics"])
@pytest.mark.parametrize("escape", ESCAPES)
def test_every_pipeline_path_is_checked_before_repro_reads_it(
        world: World, monkeypatch: pytest.MonkeyPatch, key: str, escape: str) -> None:
    """Not only outs: deps, params files, wdir, vars files and metrics of cairn.yaml are
    read (hashed, parsed) or run in — a symlink out would hash or parse a private file."""
    attacker = world.attacker
    world.plant_links(escape)
    path = world.escape_path(escape)
    stage = {"deps": f"    deps: [{json.dumps(path)}]\n",
             "params-file": f"    params: [{{{json.dumps(path)}: [lr]}}]\n",
             "wdir": f"    wdir: {json.dumps(path)}\n",
             "vars": f"    vars: [{json.dumps(path)}]\n",
             "metrics": f"    metrics: [{{{json.dumps(path)}: {{cache: false}}}}]\n"}[key]
    attacker.write("cairn.yaml", "stages:\n  train:\n    cmd: echo hi > out.txt\n"
                   f"{stage}    outs: [out.txt]\n")
    commit(attacker, f"attack: {key} {escape}")
    victim = victim_of(world, monkeypatch)
    victim.before = victim.snapshot()
    for command in (["repro"], ["status"]):
        result = victim.repo.cairn(*command, ok=False)
        assert result.exit_code == 2, (command, result.output, result.stderr)
        assert "cairn.yaml" in result.stderr and "internal error" not in result.stderr
    assert not (victim.repo.root / "out.txt").exists()  # the command never ran
    victim.assert_untouched()
