"""`cairn get` and `cairn.api.open`: a tracked artifact as of any git revision.

The artifact is found in git at that revision — its pointer file (``PATH.cairn`` or one
of a tracked directory above it), an output recorded in a ``cairn.lock``, or a file git
itself holds — and its bytes come from a local cache, else from the repository's
default remote as configured at that revision. Every object is verified against its
digest. Nothing in any workspace is read as data or written: remote objects land in a
scratch directory that is deleted afterwards.

`Snapshot` (the files of a repository at a revision, or in its workspace) is shared
with `cairn.pipeline.compare`, which reads pipelines, params and metrics the same way.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cairn.config import Config
from cairn.errors import IntegrityError, NotFoundError, ObjectNotFound, PathError, UserError
from cairn.repo import DOT_DIR, find_git_root
from cairn.scm.git import Git

if TYPE_CHECKING:  # the rest is imported where needed: `metrics diff` must start fast
    from cairn.objects.odb import ObjectDB
    from cairn.objects.tree import TreeEntry
    from cairn.workspace.lockfile import LockFile

WORKSPACE = "workspace"
POINTER_SUFFIX = ".cairn"
SKIP_DIRS = frozenset({".git", ".cairn", "__pycache__", "node_modules"})


# -- the files of a repository at a revision ------------------------------------------


class BlobReader:
    """One long-lived `git cat-file --batch`: every blob of a command through one process."""

    def __init__(self, git: Git) -> None:
        self.git = git
        self._proc: subprocess.Popen[bytes] | None = None

    def read(self, spec: str) -> bytes | None:
        """The blob named `spec` (``sha:path``), or None if there is none (or a tree)."""
        found = self._request(spec)
        return found[2] if found is not None and found[1] == b"blob" else None

    def resolve(self, rev: str) -> str:
        """The commit `rev` names (as `git rev-parse`, without a process of its own)."""
        found = None if "\n" in rev else self._request(f"{rev}^{{commit}}")
        if found is None:
            raise UserError(f"{rev!r} is not a git revision here; see `git log` or `git tag`")
        return found[0]

    def _request(self, spec: str) -> tuple[str, bytes, bytes] | None:
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(spec.encode() + b"\n")
        proc.stdin.flush()
        header = proc.stdout.readline().split()
        if len(header) != 3:  # "<spec> missing" / "ambiguous"
            return None
        data = proc.stdout.read(int(header[2]))
        proc.stdout.read(1)  # the newline after each object
        return header[0].decode(), header[1], data

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            self._proc = subprocess.Popen(["git", "cat-file", "--batch"], cwd=self.git.root,
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL)
        return self._proc

    def close(self) -> None:
        if self._proc is not None:
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.close()
            self._proc.wait()
            self._proc.stdout.close()
            self._proc = None


class Snapshot:
    """The files of a Cairn project as of one revision; paths relative to the project."""

    label: str  # for people: the revision as the user wrote it, or "workspace"
    root: Path  # the project's directory (for a revision: where it would be checked out)

    def listing(self) -> list[str]:
        raise NotImplementedError

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        """The contents of those `paths` that exist here."""
        raise NotImplementedError

    def locks(self) -> list[LockFile]:
        """Every cairn.lock here, parsed (a FormatError names a malformed one's line)."""
        from cairn.workspace.lockfile import is_lock_path, loads

        found = self.read(p for p in self.listing() if is_lock_path(p))
        return [loads(data, path) for path, data in found.items()]


class GitSnapshot(Snapshot):
    def __init__(self, git: Git, reader: BlobReader, rev: str, root: Path,
                 label: str | None = None) -> None:
        self.git, self.reader, self.root = git, reader, root
        self.sha = reader.resolve(rev)
        self.label = label or rev
        rel = root.resolve().relative_to(git.root.resolve()).as_posix()
        self.prefix = "" if rel == "." else rel + "/"
        self._listing: list[str] | None = None

    def listing(self) -> list[str]:
        if self._listing is None:
            out = self.git.run("ls-tree", "-r", "-z", "--name-only", self.sha, "--",
                               self.prefix or ".")
            self._listing = [p.removeprefix(self.prefix) for p in out.decode().split("\0")
                             if p.startswith(self.prefix) and p]
        return self._listing

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        found = {}
        for path in paths:
            data = self.reader.read(f"{self.sha}:{self.prefix}{path}")
            if data is not None:
                found[path] = data
        return found


class WorkspaceSnapshot(Snapshot):
    """The project's files as they are on disk (git-ignored data directories not listed)."""

    label = WORKSPACE

    def __init__(self, root: Path, git: Git | None) -> None:
        self.root, self.git = root, git
        self._listing: list[str] | None = None

    def listing(self) -> list[str]:
        if self._listing is None:
            self._listing = self._list()
        return self._listing

    def _list(self) -> list[str]:
        if self.git is not None:
            out = self.git.run("ls-files", "-co", "--exclude-standard", "-z", "--full-name",
                               "--", str(self.root))
            prefix = self.root.resolve().relative_to(self.git.root.resolve()).as_posix()
            prefix = "" if prefix == "." else prefix + "/"
            return [p.removeprefix(prefix) for p in out.decode().split("\0") if p]
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            found += [f if rel == "." else f"{rel}/{f}" for f in filenames]
        return found

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        found = {}
        for path in paths:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
                found[path] = (self.root / path).read_bytes()
        return found


# -- where an artifact is recorded -----------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    """A tracked path as recorded at a revision."""

    path: str  # as asked, relative to the project
    digest: str = ""  # of the file or the directory manifest; "" for a file in git
    size: int = 0
    is_dir: bool = False
    inner: str = ""  # a path below the tracked directory `digest`, "" for itself
    blob: bytes | None = None  # the content, for a file git holds


def clean_path(path: str) -> str:
    """A user's artifact path as a clean posix path inside the project, or a PathError."""
    norm = posixpath.normpath(path.replace(os.sep, "/"))
    if posixpath.isabs(norm) or norm == ".." or norm.startswith("../"):
        raise PathError(f"{path}: must be a path inside the repository, relative to its root",
                        path)
    if norm in (".", "") or norm.split("/")[0] in (".git", DOT_DIR):
        raise PathError(f"{path}: name a tracked file or directory of the repository", path)
    return norm


def find_artifact(snap: Snapshot, path: str) -> Artifact:
    """How `path` is recorded in `snap`: pointer file, cairn.lock output, or git itself."""
    path = clean_path(path)
    found = _from_pointers(snap, path) or _from_locks(snap, path)
    if found is not None:
        return found
    blob = snap.read([path]).get(path)
    if blob is not None:
        return Artifact(path, size=len(blob), blob=blob)
    raise NotFoundError(f"{path} is not tracked at {snap.label}: no {path}{POINTER_SUFFIX} "
                        "or pointer file of a directory above it, no cairn.lock output, "
                        "not in git; check the path and the revision")


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _from_pointers(snap: Snapshot, path: str) -> Artifact | None:
    from cairn.workspace import pointer

    candidates = [a + POINTER_SUFFIX for a in _ancestors(path)]
    found = snap.read(candidates)
    for candidate in candidates:  # the deepest pointer file wins
        if candidate in found:
            ptr = pointer.loads(found[candidate], Path(f"{snap.label}:{candidate}"))
            base = posixpath.dirname(candidate)
            for out in ptr.outs:
                hit = _match(posixpath.join(base, out.path), path, out.digest, out.size,
                             out.is_dir)
                if hit is not None:
                    return hit
    return None


def _from_locks(snap: Snapshot, path: str) -> Artifact | None:
    for lock in snap.locks():
        for stage in lock.stages.values():
            for out in stage.outs:
                hit = _match(out.path, path, out.digest, out.size, out.is_dir)
                if hit is not None:
                    return hit
    return None


def _match(tracked: str, path: str, digest: str, size: int, is_dir: bool) -> Artifact | None:
    tracked = posixpath.normpath(tracked)
    if tracked == path:
        return Artifact(path, digest, size, is_dir)
    if is_dir and path.startswith(tracked + "/"):
        return Artifact(path, digest, size, True, inner=path[len(tracked) + 1:])
    return None


# -- where the bytes are ---------------------------------------------------------------


class ObjectSource:
    """Objects by digest: local caches first, then a remote (connected only if needed).

    Objects from the remote are kept in a scratch database that `close` deletes.
    """

    def __init__(self, caches: list[ObjectDB], config: Config | None, remote: str | None,
                 where: str) -> None:
        self.caches, self.config, self.remote_name, self.where = caches, config, remote, where
        self._scratch: ObjectDB | None = None
        self._scratch_dir: str | None = None
        self._remote: Any = None

    def path(self, oid: str) -> str:
        """A local file holding the verified bytes of `oid`."""
        return self.paths([oid])[oid]

    def paths(self, oids: Iterable[str]) -> dict[str, str]:
        from cairn.objects.hashing import hash_file

        found: dict[str, str] = {}
        missing = []
        for oid in dict.fromkeys(oids):
            # A corrupt cache copy is passed over: the remote may still have a good one.
            local = next((odb.object_path(oid) for odb in self.caches
                          if odb.exists(oid) and hash_file(odb.object_path(oid)) == oid), None)
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
        from cairn.remotes import transfer

        remote = self._connect(oids[0])
        scratch = self._scratch_db()
        result = transfer.fetch(scratch, remote, oids, jobs=remote.jobs or 8)
        for oid, error in result.failed.items():
            if isinstance(error, IntegrityError):
                raise error
            raise ObjectNotFound(oid, f"the cache or remote {remote.name!r} ({self.where}); "
                                      "push it from a clone that has it")
        return {oid: scratch.object_path(oid) for oid in oids}

    def _connect(self, oid: str) -> Any:
        if self._remote is None:
            from cairn.errors import RemoteError
            from cairn.remotes.connect import configured_remote, connect

            if self.config is None:
                raise ObjectNotFound(oid, f"the cache ({self.where}), and there is no remote")
            try:
                found = configured_remote(self.config, self.remote_name)
            except RemoteError as e:
                raise ObjectNotFound(oid, f"the cache ({self.where}), and no remote to ask: "
                                          f"{e}") from None
            self._remote = connect(found.name, found.url, found.options, found.jobs)
        return self._remote

    def _scratch_db(self) -> ObjectDB:
        import tempfile

        from cairn.objects.odb import ObjectDB

        if self._scratch is None:
            self._scratch_dir = tempfile.mkdtemp(prefix="cairn-get-")
            self._scratch = ObjectDB(Path(self._scratch_dir))
        return self._scratch

    def close(self) -> None:
        import shutil

        if self._scratch_dir is not None:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)


class RevisionConfig(Config):
    """A repository's config with its committed file as of a revision (remotes there)."""

    def __init__(self, dot_dir: Path, committed: bytes | None) -> None:
        super().__init__(dot_dir)
        self.committed = committed

    def layers(self) -> Iterator[dict[str, Any]]:
        import tomllib

        from cairn.config import global_config_path, read_toml

        if self.committed is not None:
            try:
                yield tomllib.loads(self.committed.decode())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError):
                yield {}
        assert self.dot_dir is not None
        yield read_toml(self.dot_dir / "config.local.toml")
        yield read_toml(global_config_path())
        from cairn.config import env_layer

        yield env_layer(self.environ)


# -- opening a repository ------------------------------------------------------------


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
        return RevisionConfig(dot_dir, snap.read([f"{DOT_DIR}/config.toml"]).get(
            f"{DOT_DIR}/config.toml"))


def is_url(repo: str) -> bool:
    return "://" in repo or (":" in repo.split("/")[0] and not os.path.exists(repo))


@contextlib.contextmanager
def open_repo(repo: str | None = None) -> Iterator[SourceRepo]:
    """`repo`: None or "." (the repository here), a local path, or a git URL to clone."""
    from cairn.objects.odb import ObjectDB
    from cairn.repo import Repo

    here = _here()
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
        caches = [Repo(root).cache_dir] if (root / DOT_DIR).is_dir() and not cloned else []
        if here is not None and here.cache_dir not in caches:
            caches.append(here.cache_dir)  # same content, same name: any cache will do
        yield SourceRepo(root, git, reader, cloned, [ObjectDB(c) for c in caches])


def _here() -> Any:
    from cairn.errors import NotARepositoryError
    from cairn.repo import Repo

    try:
        return Repo.find()
    except NotARepositoryError:
        return None


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


# -- reading and writing an artifact ----------------------------------------------------


@contextlib.contextmanager
def locate(repo: str | None, path: str, rev: str | None, remote: str | None
           ) -> Iterator[tuple[Artifact, ObjectSource]]:
    """The artifact `path` at `rev` of `repo`, and where its objects can be read."""
    with open_repo(repo) as src:
        snap = src.snapshot(rev)
        artifact = find_artifact(snap, path)
        where = f"{artifact.path} at {snap.label}"
        objects = ObjectSource(src.caches, src.config(snap), remote, where)
        try:
            yield descend(artifact, objects), objects
        finally:
            objects.close()


def descend(artifact: Artifact, objects: ObjectSource) -> Artifact:
    """For a path inside a tracked directory: the entry it names there."""
    if not artifact.inner:
        return artifact
    from cairn.objects.tree import decode_tree

    digest, parts = artifact.digest, artifact.inner.split("/")
    for i, name in enumerate(parts):
        entries = {e.name: e for e in decode_tree(objects.read(digest), digest)}
        entry = entries.get(name)
        if entry is None or (i < len(parts) - 1 and not entry.is_dir):
            raise NotFoundError(f"{artifact.path} is not in its tracked directory "
                                f"({objects.where}); check the path")
        digest = entry.digest
    assert entry is not None
    return Artifact(artifact.path, entry.digest, entry.size, entry.is_dir)


@contextlib.contextmanager
def open_artifact(path: str, repo: str | None = None, rev: str | None = None,
                  remote: str | None = None) -> Iterator[IO[bytes]]:
    """A binary file of the artifact's verified bytes."""
    import io

    with locate(repo, path, rev, remote) as (artifact, objects):
        if artifact.is_dir:
            raise UserError(f"{artifact.path} is a directory; open a file inside it, or copy "
                            "it with `cairn get`")
        if artifact.blob is not None:
            yield io.BytesIO(artifact.blob)
            return
        with open(objects.path(artifact.digest), "rb") as f:
            yield f


@dataclass(frozen=True)
class GetResult:
    path: Path  # what was written
    files: int
    size: int


def get(repo: str | None, path: str, rev: str | None = None, out: str | None = None,
        remote: str | None = None, force: bool = False) -> GetResult:
    """Copy the artifact to `out` (default: its name, here), atomically."""
    with locate(repo, path, rev, remote) as (artifact, objects):
        dest = Path(out or posixpath.basename(artifact.path)).absolute()
        if os.path.lexists(dest) and not force:
            raise UserError(f"{dest} already exists; remove it, choose another -o, or --force")
        if artifact.is_dir:
            files = list(_walk(objects, artifact.digest, ""))
            sources = objects.paths(e.digest for _, e in files)
            _replace_dir(dest, files, sources)
            return GetResult(dest, len(files), sum(e.size for _, e in files))
        if artifact.blob is not None:
            from cairn.fsutil import atomic_write

            atomic_write(dest, artifact.blob)
        else:
            _replace_file(dest, objects.path(artifact.digest))
        return GetResult(dest, 1, artifact.size)


def _walk(objects: ObjectSource, digest: str, prefix: str) -> Iterator[tuple[str, TreeEntry]]:
    from cairn.objects.tree import decode_tree

    for entry in decode_tree(objects.read(digest), digest):
        if entry.is_dir:
            yield from _walk(objects, entry.digest, f"{prefix}{entry.name}/")
        else:
            yield f"{prefix}{entry.name}", entry


def _copy_durable(src: str, dest: Path, mode: int = 0o644) -> None:
    import shutil

    shutil.copyfile(src, dest)
    os.chmod(dest, mode)
    with open(dest, "rb+") as f:
        os.fsync(f.fileno())


def _replace_file(dest: Path, src: str) -> None:
    import shutil
    import tempfile

    from cairn.fsutil import fsync_dir

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        _copy_durable(src, Path(tmp))
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)  # --force over a directory
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(dest.parent)


def _replace_dir(dest: Path, files: list[tuple[str, TreeEntry]], sources: dict[str, str]
                 ) -> None:
    """Build the directory beside `dest`, then rename it into place in one step."""
    import shutil
    import tempfile

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        for rel, entry in files:
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy_durable(sources[entry.digest], target, 0o755 if entry.mode == "0755"
                          else 0o644)
        os.chmod(tmp, 0o755)
        if os.path.lexists(dest):  # --force: the old one goes only once the new one is whole
            old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".old"))
            os.replace(dest, old / "x")
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
