"""Registering a model version: whatever the source, the version names one digest.

- ``runs:/<id>/<path>``: the digest the run recorded for that artifact (refused if the
  run has none at that path);
- ``models:/…``: the digest of that version (copying a version to another name);
- a local directory or file: stored as objects first;
- a Cairn-tracked path (``model.onnx`` with ``model.onnx.cairn``, or the pointer file
  itself; or a cached out of a ``cairn.lock``): the digest its pointer file (or lock)
  records, which must be in the cache.

A single file is wrapped in a one-entry directory manifest: a model version is always
a directory, so it loads the same way whatever it came from. A version registered
without a run records the lineage of the workspace as its own ``cairn.*`` tags.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from cairn.errors import NotFoundError, ObjectNotFound, UserError
from cairn.identity import current_user
from cairn.project import pointer
from cairn.project.lockfile import LOCK_NAME, read_lock
from cairn.project.tracked import TrackedPath
from cairn.registry import permissions, uris
from cairn.store.entities import ModelVersion
from cairn.tracking import artifacts, lineage, server_objects
from cairn.tracking.backend import Backend


def register(b: Backend, source: str, name: str, tags: dict[str, str],
             description: str = "", run_id: str | None = None) -> ModelVersion:
    if not name or not name.strip() or "/" in name or "@" in name:
        raise UserError(f"model name {name!r} is not valid: it must be non-empty and hold "
                        "no '/' or '@' (they separate the parts of models:/ URIs)")
    user = current_user()
    with contextlib.suppress(NotFoundError):  # a new model: its creator will manage it
        permissions.require(b.store, name, user, "EDIT", "registering a version")
    with b.writing_objects():
        digest, source_run, extra = _digest_of(b, source)
        server_objects.share(b, [(digest, True)])
        created = b.store.create_model_version(
            name, source, digest, run_id or source_run, {**extra, **tags}, description, user)
    from cairn.registry.webhooks import dispatch

    dispatch(b.store, b.uri)  # model_version.registered, sent in the background
    return created


def _digest_of(b: Backend, source: str) -> tuple[str, str | None, dict[str, str]]:
    """(manifest digest, run id, lineage tags for a version without a run)."""
    if source.startswith(uris.RUNS):
        ref = uris.parse_runs(source)
        found = artifacts.find_artifact(b.store, ref.run_id, ref.path)
        if found.is_dir:
            return found.digest, ref.run_id, {}
        name = ref.path.rsplit("/", 1)[-1]
        return artifacts.wrap_file(b.odb, name, found.digest, found.size), ref.run_id, {}
    if source.startswith(uris.MODELS):
        mv = uris.resolve_version(b.store, uris.parse_models(source))
        return mv.digest, mv.run_id, {}
    return _local_digest(b, Path(source)), None, lineage.capture(b.root)


def _local_digest(b: Backend, path: Path) -> str:
    ptr_path = path if path.name.endswith(pointer.SUFFIX) else pointer.pointer_path_for(path)
    if ptr_path.is_file():
        return _tracked_digest(b, ptr_path, path)
    locked = _locked_out(b, path)
    if locked is not None:  # a pipeline's out: what repro recorded, not what is on disk
        return _cached_digest(b, locked.path, locked.digest, locked.size, locked.is_dir)
    if path.is_dir():
        return artifacts.store_dir(b.odb, path, path.name, "")[0].digest
    if path.is_file():
        stored = artifacts.store_file(b.odb, path, path.name, "")
        return artifacts.wrap_file(b.odb, path.name, stored.digest, stored.size)
    raise NotFoundError(f"{path}: no such file or directory, and not a model URI "
                        f"({uris.FORMS})")


def _tracked_digest(b: Backend, ptr_path: Path, path: Path) -> str:
    ptr = pointer.load(ptr_path)
    wanted = path.name if path != ptr_path else None
    outs = [o for o in ptr.outs if wanted is None or o.path == wanted]
    if len(outs) != 1:
        names = ", ".join(o.path for o in ptr.outs)
        raise UserError(f"{ptr_path} tracks {names}; register one of them by its path")
    out = outs[0]
    return _cached_digest(b, out.path, out.digest, out.size, out.is_dir)


def _locked_out(b: Backend, path: Path) -> TrackedPath | None:
    """The cached out at `path` that a cairn.lock in its directory or above records."""
    if b.root is None:
        return None
    try:
        rel = path.absolute().relative_to(b.root.absolute())
    except ValueError:
        return None
    for directory in rel.parents:
        lock = read_lock(b.root, (directory / LOCK_NAME).as_posix())
        for stage in lock.stages.values():
            out = stage.out(rel.as_posix())
            if out is not None and out.cache:
                return out
    return None


def _cached_digest(b: Backend, rel: str, digest: str, size: int, is_dir: bool) -> str:
    if not b.odb.exists(digest):
        raise ObjectNotFound(digest, f"the cache ({rel}: run `cairn pull {rel}` first)")
    if is_dir:
        return digest
    return artifacts.wrap_file(b.odb, Path(rel).name, digest, size)
