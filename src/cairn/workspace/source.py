"""Where `cairn get` and `cairn.api.open` read from: the repository (the one here, a
local path, or a temporary clone of a git URL) and the objects it names — from a local
cache, else from a remote as the repository configures it now (the revision's committed
config supplies only remotes that exist there alone).

Every object is verified against its digest. Objects fetched from a remote land in a
scratch directory that is deleted afterwards: no workspace or cache is written.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.config import Config
from cairn.errors import IntegrityError, ObjectNotFound, UserError
from cairn.project.context import DOT_DIR, find_git_root
from cairn.project.snapshot import BlobReader, GitSnapshot, Snapshot, WorkspaceSnapshot
from cairn.scm.git import Git

if TYPE_CHECKING:  # the rest is imported where needed: `metrics diff` must start fast
    from cairn.objects.odb import ObjectDB
    from cairn.project.context import ProjectContext


# -- the objects -----------------------------------------------------------------------


class ObjectSource:
    """Objects by digest: local caches first, then a remote (connected only if needed).

    Objects from the remote are kept in a scratch database that `close` deletes.
    """

    def __init__(self, caches: list[ObjectDB], config: Config | None, remote: str | None,
                 where: str) -> None:
        self.caches, self.config, self.remote_name, self.where = caches, config, remote, where
        self._scratch: ObjectDB | None = None
        self._scratch_dir: str | None = None
        self._remote: ObjectDB | None = None

    def path(self, oid: str) -> str:
        """A local file holding the verified bytes of `oid`."""
        return self.paths([oid])[oid]

    def paths(self, oids: Iterable[str]) -> dict[str, str]:
        from cairn.objects.hashing import hash_file

        found: dict[str, str] = {}
        missing = []
        for oid in dict.fromkeys(oids):
            # A corrupt cache copy is passed over: the remote may still have a good one.
            local = next((odb.oid_to_path(oid) for odb in self.caches
                          if odb.exists(oid) and hash_file(odb.oid_to_path(oid)) == oid), None)
            if local is not None:
                found[oid] = local
            else:
                missing.append(oid)
        found.update(self._download(missing))
        return found

    def read(self, oid: str) -> bytes:
        with open(self.path(oid), "rb") as f:
            return f.read()

    def _download(self, oids: list[str]) -> dict[str, str]:
        if not oids:
            return {}
        from cairn.objects.transfer import DEFAULT_JOBS, transfer

        remote = self._connect(oids[0])
        scratch = self._scratch_db()
        result = transfer(remote, scratch, oids, jobs=remote.jobs or DEFAULT_JOBS)
        for oid, error in result.failed.items():
            if isinstance(error, IntegrityError):
                raise error
            raise ObjectNotFound(oid, f"the cache or remote {remote.name!r} ({self.where}); "
                                      "push it from a clone that has it")
        return {oid: scratch.oid_to_path(oid) for oid in oids}

    def _connect(self, oid: str) -> ObjectDB:
        if self._remote is None:
            from cairn.errors import RemoteError
            from cairn.remotes.connect import configured_remote

            if self.config is None:
                raise ObjectNotFound(oid, f"the cache ({self.where}), and there is no remote")
            try:
                found = configured_remote(self.config, self.remote_name)
            except RemoteError as e:
                raise ObjectNotFound(oid, f"the cache ({self.where}), and no remote to ask: "
                                          f"{e}") from None
            self._remote = found.connect()  # its own errors (a missing backend) as they are
        return self._remote

    def _scratch_db(self) -> ObjectDB:
        import tempfile

        from cairn.objects.odb import ObjectDB

        if self._scratch is None:
            self._scratch_dir = tempfile.mkdtemp(prefix="cairn-get-")
            self._scratch = ObjectDB.local(Path(self._scratch_dir))
        return self._scratch

    def close(self) -> None:
        import shutil

        if self._scratch_dir is not None:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)


# -- the repository ----------------------------------------------------------------------


class RevisionConfig(Config):
    """The repository's config as it is now, plus remotes its committed file named at a revision.

    A remote is usually added after the tags it serves (tag v1, `remote add`, push
    --all-tags), so the usual layers come first; the revision's committed file only
    supplies remotes (and a default) that exist only there.
    """

    def __init__(self, dot_dir: Path, at_rev: bytes | None,
                 committed: bytes | None = None) -> None:
        # committed: the config.toml committed now, for a clone with no workspace to read
        super().__init__(dot_dir)
        self.at_rev, self.committed = at_rev, committed

    def layers(self) -> Iterator[dict[str, Any]]:
        now = list(self._current_layers())
        yield self._only_at_rev(now)
        yield from now

    def _current_layers(self) -> Iterator[dict[str, Any]]:
        from cairn.config import env_layer, global_config_path, read_toml

        assert self.dot_dir is not None
        if self.committed is not None:
            yield _parse_toml(self.committed)
        else:
            yield read_toml(self.dot_dir / "config.toml")
        yield read_toml(self.dot_dir / "config.local.toml")
        yield read_toml(global_config_path())
        yield env_layer(self.environ)

    def _only_at_rev(self, now: list[dict[str, Any]]) -> dict[str, Any]:
        """The revision's default remote and the remotes not defined now (whole, unmerged)."""
        then = _parse_toml(self.at_rev) if self.at_rev is not None else {}
        defined = {name for layer in now for name in _section(layer, "remote")}
        remotes = {name: opts for name, opts in _section(then, "remote").items()
                   if name not in defined}
        default = _section(then, "core").get("remote")
        layer: dict[str, Any] = {"remote": remotes} if remotes else {}
        if isinstance(default, str):
            layer["core"] = {"remote": default}  # a default set now overrides it
        return layer


def _parse_toml(data: bytes) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(data.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}  # a broken file in history must not stop reading what is named now


def _section(layer: dict[str, Any], name: str) -> dict[str, Any]:
    found = layer.get(name)
    return found if isinstance(found, dict) else {}


@dataclass
class SourceRepo:
    """The repository an artifact comes from: local (read in place) or a temporary clone."""

    root: Path  # the project's directory
    git: Git | None
    reader: BlobReader | None
    cloned: bool
    caches: list[ObjectDB]

    def snapshot(self, rev: str | None) -> Snapshot:
        if rev is None and not self.cloned:
            return WorkspaceSnapshot(self.root, self.git)
        if self.git is None or self.reader is None:
            raise UserError(f"--rev needs a git repository; {self.root} has none")
        return GitSnapshot(self.git, self.reader, rev or "HEAD", self.root)

    def config(self, snap: Snapshot) -> Config:
        dot_dir = self.root / DOT_DIR
        if isinstance(snap, WorkspaceSnapshot):
            return Config(dot_dir)
        name = f"{DOT_DIR}/config.toml"
        committed = None
        if self.cloned:  # no workspace: the config committed now is the one at HEAD
            assert self.git is not None and self.reader is not None
            committed = GitSnapshot(self.git, self.reader, "HEAD", self.root).read(
                [name]).get(name, b"")
        return RevisionConfig(dot_dir, snap.read([name]).get(name), committed)


def is_url(repo: str) -> bool:
    return "://" in repo or (":" in repo.split("/")[0] and not os.path.exists(repo))


@contextlib.contextmanager
def open_repo(here: ProjectContext | None, repo: str | None = None) -> Iterator[SourceRepo]:
    """`repo`: None or "." (`here`, the project the caller runs in), a local path, or a
    git URL to clone."""
    from cairn.objects.odb import ObjectDB
    from cairn.project.context import ProjectContext

    with contextlib.ExitStack() as stack:
        if repo in (None, ".") or (repo is not None and not is_url(repo)):
            root = here.root if repo in (None, ".") and here is not None \
                else _local_root(repo or ".")
            cloned = False
        else:
            assert repo is not None
            root = _clone(repo, stack)
            cloned = True
        git_root = find_git_root(root)
        git = Git(git_root) if git_root is not None else None
        reader = BlobReader(git) if git is not None else None
        if reader is not None:
            stack.callback(reader.close)
        owned = (root / DOT_DIR).is_dir() and not cloned
        caches = [ProjectContext(root).cache_dir] if owned else []
        if here is not None and here.cache_dir not in caches:
            caches.append(here.cache_dir)  # same content, same name: any cache will do
        yield SourceRepo(root, git, reader, cloned, [ObjectDB.local(c) for c in caches])


def _local_root(repo: str) -> Path:
    root = Path(repo).expanduser().resolve()
    if not root.is_dir():
        raise UserError(f"{repo}: no such repository directory; give a path or a git URL")
    if not (root / DOT_DIR).is_dir() and find_git_root(root) is None:
        raise UserError(f"{repo}: neither a Cairn nor a git repository")
    return root


def _clone(url: str, stack: contextlib.ExitStack) -> Path:
    import tempfile

    tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="cairn-clone-"))
    dest = Path(tmp) / "repo"
    proc = subprocess.run(["git", "clone", "--no-checkout", "--quiet", url, str(dest)],
                          capture_output=True, check=False)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise UserError(f"cannot clone {url}: {lines[-1] if lines else 'git clone failed'}")
    return dest
