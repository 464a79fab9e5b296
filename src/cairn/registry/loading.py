"""`load_model(uri)`: resolve → digest → a verified, read-only model directory → flavor.

A model is materialized once per digest under ``<tmp>/models/<digest>`` (the project's
``.cairn/tmp``, else beside the object store): built in a temp sibling from verified
objects, made read-only, then renamed into place, so a reader sees it whole or not at
all. A stamp beside it records each file's size and mtime; a later load that finds
them unchanged skips re-hashing, and one that finds any change rebuilds from the
(verified) objects. A tampered object is refused with an IntegrityError.

Only such a directory is passed to the flavor with ``verified=True``, which lets the
model's own code run without ``trusted=True`` (a pickle still needs it); a model given
by a path is not vouched for by the store, whatever directory it lies in (SPEC §10).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.errors import ObjectNotFound, UserError
from cairn.registry import uris
from cairn.tracking.artifacts import materialize
from cairn.tracking.backend import Backend, backend

if TYPE_CHECKING:
    from cairn.flavors.base import LoadedModel

MODELS_DIR = "models"
STAMP_SUFFIX = ".verified"


def load_model(model_uri: str | os.PathLike[str], trusted: bool = False,
               dst_path: str | None = None) -> LoadedModel:
    """A model with `.predict` (checked against its input schema) and `.metadata`
    (its lineage in `.metadata.lineage`). `model_uri`: models:/…, runs:/…, or a path to a
    model directory (`cairn.load_model` also takes package:PATH). Pickle-based models
    load only with `trusted=True`; a model's own code runs without it only when it comes
    from the store (a URI), verified."""
    from cairn.flavors.base import load

    path, lineage = model_path(str(model_uri))
    # model_path built a URI's directory from digest-verified objects; a path is anyone's
    verified = uris.is_model_uri(str(model_uri))
    model = load(path, trusted=trusted, verified=verified, source=str(model_uri))
    if lineage:
        model.metadata = model.metadata.with_lineage(lineage)
    return model


def model_path(model_uri: str, b: Backend | None = None) -> tuple[Path, dict[str, Any]]:
    """The local model directory for `model_uri`, and the lineage to attach to it."""
    if not uris.is_model_uri(model_uri):
        local = Path(model_uri)
        if not local.is_dir():
            raise UserError(f"{model_uri} is neither a model directory nor a model URI "
                            f"({uris.FORMS})")
        return local, {}
    b = b or backend()
    resolved = uris.resolve(b.store, model_uri)
    if not resolved.is_dir:
        raise UserError(f"{model_uri} names a file, not a model directory; "
                        "name the directory log_model wrote (e.g. runs:/<id>/model)")
    from cairn.registry.lineage import load_lineage

    return materialized(b, resolved.digest, model_uri), load_lineage(b.store, resolved)


def materialized(b: Backend, digest: str, label: str = "") -> Path:
    """The read-only, verified directory of manifest `digest` (`label`: its URI, for
    messages), built if needed."""

    def build(built: Path) -> None:
        try:
            materialize(b.odb, digest, True, built)
        except ObjectNotFound:
            if not fetch_tree(b, digest, label):
                raise
            materialize(b.odb, digest, True, built)

    return read_only_dir(b.tmp_dir / MODELS_DIR, digest, build)


def read_only_dir(root: Path, name: str, build: Callable[[Path], None]) -> Path:
    """`root/name`, built by `build(directory)` unless it is there unchanged since it was
    built (its stamp): built in a temp sibling, made read-only, renamed into place."""
    final = root / name
    stamp = root / (name + STAMP_SUFFIX)
    if final.is_dir() and _unchanged(final, stamp):
        return final
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name[:16]}.", suffix=".tmp", dir=root))
    try:
        built = work / "model"
        build(built)
        _stamp(built, work / "stamp")
        _make_read_only(built)
        if final.exists():  # stale or tampered: replace it
            _remove(final)
        try:
            os.rename(built, final)  # the top directory stays writable until here
        except OSError:
            if not final.is_dir():  # not another process that won the race
                raise
            return final
        os.chmod(final, 0o555)
        os.replace(work / "stamp", stamp)
    finally:
        _remove(work)
    return final


def fetch_tree(b: Backend, digest: str, label: str = "") -> bool:
    """Fetch a model's missing objects from the tracking server, else from the project's
    default remote and its cold remotes, level by level (a manifest names its children).
    False when there is neither to ask. An archived object (S3 GLACIER) has its restore
    requested and fails saying when to retry."""
    from cairn.objects.transfer import TransferResult
    from cairn.remotes.connect import configured_remote, has_remote
    from cairn.remotes.tiers import fetch_trees, open_cold
    from cairn.tracking import server_objects

    if server_objects.fetch(b, [(digest, True)]):
        return True
    if b.repo is None or not has_remote(b.repo.config):
        return False

    def stop_at_failures(level: TransferResult) -> None:
        level.raise_for_failures("fetched")

    found = configured_remote(b.repo.config)
    # Failures stop the walk at their level; a manifest that cannot be read, at the end.
    fetch_trees(found.connect(), b.odb, [(digest, True)],
                cold=open_cold(b.repo.config, besides=[found.name]),
                restore_days=found.restore_days, on_level=stop_at_failures,
                labels={digest: label} if label else None).raise_for_failures("fetched")
    return True


def _file_stats(root: Path) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            found[rel] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return found


def _stamp(root: Path, out: Path) -> None:
    out.write_text(json.dumps(_file_stats(root), sort_keys=True))


def _unchanged(root: Path, stamp: Path) -> bool:
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return bool(recorded == _file_stats(root))


def _make_read_only(root: Path) -> None:
    """Files and sub-directories; the top one last, after it has moved into place."""
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            path = os.path.join(dirpath, name)
            os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) & ~0o222)
        if dirpath != str(root):
            os.chmod(dirpath, 0o555)


def _remove(path: Path) -> None:
    if not path.exists():
        return
    for dirpath, _dirs, _files in os.walk(path):
        with contextlib.suppress(OSError):
            os.chmod(dirpath, 0o755)
    shutil.rmtree(path, ignore_errors=True)
