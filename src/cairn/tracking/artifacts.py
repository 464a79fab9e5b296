"""Run artifacts: files and directories stored as objects, recorded by digest.

A logged directory is stored as manifests (objects/tree.py); the store records every
file and directory below it (path → digest), so `runs:/<id>/model` names a manifest and
`list_artifacts` is one query. Reading an artifact back verifies every object's bytes
against its name: a tampered object is refused, never handed over.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from pathlib import Path

from cairn.errors import IntegrityError, NotFoundError, ObjectNotFound, UserError
from cairn.objects.hashing import hash_bytes, hash_file
from cairn.objects.odb import SMALL_FILE, ObjectDB
from cairn.objects.state import NoStatCache
from cairn.objects.tree import TreeEntry, encode_tree, read_tree, scan_dir
from cairn.store.base import MetadataStore
from cairn.store.entities import Artifact
from cairn.tracking import server_objects
from cairn.tracking.backend import Backend


def clean_artifact_path(path: str | None) -> str:
    """A run-relative posix path; never absolute, never climbing out with `..`."""
    if not path:
        return ""
    text = str(path).replace("\\", "/").strip("/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts or text.startswith("/") or "\0" in text:
        raise UserError(f"artifact path {path!r} must stay inside the run's artifacts "
                        "(no '..', not absolute)")
    return "/".join(parts)


def log_path(b: Backend, run_id: str, local_path: str | os.PathLike[str],
             artifact_path: str | None = None, contents_only: bool = False) -> Artifact:
    """Store a file or directory and record it at `artifact_path/<its name>` (or, with
    `contents_only`, a directory's entries directly under `artifact_path`)."""
    src = Path(local_path)
    if not src.exists():
        raise NotFoundError(f"{local_path}: no such file or directory to log as an artifact")
    base = clean_artifact_path(artifact_path)
    target = base if contents_only else _join(base, src.name)
    if contents_only and not src.is_dir():
        raise UserError(f"{local_path} is a file; use log_artifact for single files")
    with b.writing_objects():
        records = (store_dir(b.odb, src, target, run_id, root_entry=bool(target))
                   if src.is_dir() else [store_file(b.odb, src, target, run_id)])
        b.store.log_artifacts(run_id, records)
        server_objects.share(b, [(r.digest, r.is_dir) for r in records])
    return records[0] if records else Artifact(run_id, target, "", 0, True)


def store_file(odb: ObjectDB, src: Path, target: str, run_id: str) -> Artifact:
    oid, size = odb.add_file(src)
    return Artifact(run_id, target, oid, size, False)


def store_dir(odb: ObjectDB, src: Path, target: str, run_id: str,
              root_entry: bool = True) -> list[Artifact]:
    """Objects and manifests of `src` stored; the directory's record first."""
    scan = scan_dir(src, NoStatCache(), odb)
    records: list[Artifact] = []
    if root_entry:
        records.append(Artifact(run_id, target, scan.oid, scan.size, True))
    for rel, (digest, size, _mode) in sorted(scan.files.items()):
        records.append(Artifact(run_id, _join(target, rel), digest, size, False))
    for rel, entry in _subdir_entries(odb, scan.oid).items():
        records.append(Artifact(run_id, _join(target, rel), entry.digest, entry.size, True))
    return records


def _join(base: str, rel: str) -> str:
    return posixpath.join(base, rel) if base else rel


def _subdir_entries(odb: ObjectDB, oid: str, prefix: str = "") -> dict[str, TreeEntry]:
    found: dict[str, TreeEntry] = {}
    for entry in read_tree(odb, oid):
        if entry.is_dir:
            rel = f"{prefix}{entry.name}"
            found[rel] = entry
            found.update(_subdir_entries(odb, entry.digest, rel + "/"))
    return found


def wrap_file(odb: ObjectDB, name: str, digest: str, size: int, mode: str = "0644") -> str:
    """A one-entry manifest holding a file: models are directories, even of one file."""
    return odb.add_bytes(encode_tree([TreeEntry(name, "file", digest, size, mode)]))


# -- reading ---------------------------------------------------------------------------

def find_artifact(store: MetadataStore, run_id: str, path: str) -> Artifact:
    """The record at exactly `path` in the run's artifacts, or a NotFoundError naming
    what the run has."""
    wanted = clean_artifact_path(path)
    entries = store.list_artifacts(run_id, wanted or None)
    for entry in entries:
        if entry.path == wanted:
            return entry
    if not wanted and entries:  # the whole artifact root: a virtual directory
        raise UserError(f"name an artifact path inside run {run_id}, e.g. "
                        f"runs:/{run_id}/{top_level(entries)[0]}")
    have = top_level(store.list_artifacts(run_id))
    listing = ", ".join(have[:20]) if have else "none"
    raise NotFoundError(f"run {run_id} has no artifact {wanted!r}; its artifacts: {listing}")


def top_level(entries: list[Artifact]) -> list[str]:
    return sorted({e.path.split("/", 1)[0] for e in entries})


def children(entries: list[Artifact], path: str) -> list[Artifact]:
    """The direct children of `path` (MLflow's list_artifacts shows one level). A
    directory that only exists as the parent of logged files is shown too."""
    prefix = f"{path}/" if path else ""
    found: dict[str, Artifact] = {}
    for e in entries:
        if not e.path.startswith(prefix) or e.path == path:
            continue
        first, slash, _ = e.path[len(prefix):].partition("/")
        child = prefix + first
        if not slash:
            found[child] = e
        elif child not in found:
            found[child] = Artifact(e.run_id, child, "", 0, True)
    return [found[k] for k in sorted(found)]


def materialize(odb: ObjectDB, digest: str, is_dir: bool, dest: Path) -> None:
    """Write the object (a file, or a manifest's whole tree) at `dest`, verifying every
    object's bytes; `dest` must not exist. On any failure nothing is left at `dest`."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        target = tmp / "out"
        try:
            if is_dir:
                _write_tree(odb, digest, target)
            else:
                copy_verified(odb, digest, target, "0644")
        except ObjectNotFound as e:
            raise missing_object(odb, e.oid) from None
        os.replace(target, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_tree(odb: ObjectDB, oid: str, dest: Path) -> None:
    dest.mkdir()
    for entry in read_tree(odb, oid):  # read_tree verifies the manifest's bytes
        if entry.is_dir:
            _write_tree(odb, entry.digest, dest / entry.name)
        else:
            copy_verified(odb, entry.digest, dest / entry.name, entry.mode)


def copy_verified(odb: ObjectDB, oid: str, dest: Path, mode: str) -> None:
    src = odb.oid_to_path(oid)
    try:
        size = os.stat(src).st_size
    except FileNotFoundError:
        raise ObjectNotFound(oid) from None
    if size < SMALL_FILE:
        data = Path(src).read_bytes()
        if hash_bytes(data) != oid:
            raise _corrupt(odb, oid)
        dest.write_bytes(data)
    else:
        shutil.copyfile(src, dest)
        if hash_file(dest, size) != oid:
            raise _corrupt(odb, oid)
    os.chmod(dest, 0o755 if mode == "0755" else 0o644)


def missing_object(odb: ObjectDB, oid: str) -> ObjectNotFound:
    """Which cache was searched, and the two usual ways out."""
    return ObjectNotFound(oid, f"the cache {odb.root}; run `cairn pull` (or `cairn fetch`) "
                               "in the project that logged it, or set the tracking URI "
                               "(CAIRN_TRACKING_URI) to the database it was logged with")


def _corrupt(odb: ObjectDB, oid: str) -> IntegrityError:
    return IntegrityError(f"object {oid} in {odb.root} is corrupt (its bytes hash differently); "
                          "refusing to use it — run `cairn fsck`, then `cairn pull` a good copy",
                          oid)


def download(b: Backend, run_id: str, path: str, dst_path: str | os.PathLike[str] | None
             ) -> Path:
    """Copy a run artifact (verified) into `dst_path` (default: a new temp directory)."""
    wanted = clean_artifact_path(path)
    entries = b.store.list_artifacts(run_id, wanted or None)
    below = [e for e in entries if e.path.startswith(f"{wanted}/") or not wanted]
    exact = [e for e in entries if e.path == wanted]
    artifact = exact[0] if exact else None if below else find_artifact(b.store, run_id, path)
    dst_root = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="cairn-artifacts-"))
    dst_root.mkdir(parents=True, exist_ok=True)
    dest = dst_root / (posixpath.basename(wanted) or "artifacts")
    if dest.exists():
        raise UserError(f"{dest} already exists; download into an empty directory")
    if artifact is not None:
        server_objects.fetch(b, [(artifact.digest, artifact.is_dir)])
        materialize(b.odb, artifact.digest, artifact.is_dir, dest)
        return dest
    server_objects.fetch(b, [(e.digest, False) for e in below if not e.is_dir])
    # A directory with no record of its own (files logged under a path): file by file.
    for entry in below:
        if entry.is_dir:
            continue
        target = dest / entry.path[len(wanted):].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        materialize(b.odb, entry.digest, False, target)
    return dest
