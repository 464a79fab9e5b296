"""`cairn package build`: a registered version as one immutable, self-contained file.

The package holds the version's model directory (``model/``, with a pyfunc model's code
paths inside it), the ``--include``d files (``include/<path>``), ``serving.yaml``,
``schema.json`` (the model's signature) and ``requirements.txt`` (pinned), described by
MANIFEST.json with the whole lineage of the version. Nothing in it depends on when,
where or by whom it was built — the only times are those the registry recorded — so two
builds of one version give the same bytes, and the digest names the package. The built
file is also added to the project's object store (so `cairn push` sends it) and
recorded against the version (so lineage shows it and gc keeps it).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cairn import paths
from cairn.errors import UserError
from cairn.flavors.base import read_metadata
from cairn.packaging import archive
from cairn.packaging.manifest import (
    INCLUDE_DIR,
    MODEL_DIR,
    REQUIREMENTS_FILE,
    SCHEMA_FILE,
    SERVING_FILE,
    SUFFIX,
    FileEntry,
    Manifest,
    canonical_json,
    manifest_document,
    oci_index,
    oci_manifest,
    ref_name,
)
from cairn.packaging.verify import open_package
from cairn.store.base import PackageRecord

DEFAULT_BATCH_SIZE = 64
DEFAULT_RESOURCES = {"cpu": 1, "memory_mb": 1024}
# What may change after a version was registered is left out of its package, so that a
# rebuild gives the same bytes and the lineage kept is how the version was made: the
# registry's later state (stage, aliases, description, tags and their history), the
# run's progress and names, and the git tags a clone happens to have at the commit.
VOLATILE_LINEAGE = ("transitions", "requests", "reproduction", "packages")
MUTABLE_MODEL_FIELDS = ("stage", "aliases", "description", "tags")
MUTABLE_RUN_FIELDS = ("run_name", "status", "end_time", "lifecycle_stage", "experiment")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

Source = bytes | Path


@dataclass(frozen=True)
class Built:
    path: Path
    manifest: Manifest
    object_id: str  # in the project's object store
    record: PackageRecord


def build_package(uri: str, out_dir: str | os.PathLike[str] = "dist",
                  includes: Sequence[str] = (), requirements: str | None = None,
                  batch_size: int = DEFAULT_BATCH_SIZE) -> Built:
    """Build the package of the version `uri` names (models:/NAME/N, @alias, /Stage)."""
    from cairn.identity import current_user
    from cairn.registry import uris
    from cairn.registry.lineage import model_lineage
    from cairn.registry.loading import materialized
    from cairn.tracking.backend import backend

    if not uri.startswith(uris.MODELS):
        raise UserError(f"package build takes a registered version (models:/NAME/VERSION, "
                        f"models:/NAME@ALIAS or models:/NAME/STAGE), not {uri!r}")
    if batch_size < 1:
        raise UserError(f"--batch-size must be a positive number, not {batch_size}")
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise UserError(f"-o {out_dir} is a file; give the directory to write the package in")
    b = backend()
    mv = uris.resolve_version(b.store, uris.parse_models(uri))
    exact = f"models:/{mv.name}/{mv.version}"
    model_dir = materialized(b, mv.digest)
    files = model_files(model_dir)
    files.update(include_files(includes, b.root or Path.cwd()))
    meta = read_metadata(model_dir)
    files[SERVING_FILE] = serving_yaml(meta.loader, batch_size)
    if meta.signature is not None:
        files[SCHEMA_FILE] = canonical_json(meta.signature.to_dict()) + b"\n"
    pins = (read_requirements(requirements) if requirements is not None
            else pinned(meta.requirements, meta.library_versions))
    files[REQUIREMENTS_FILE] = "".join(f"{r}\n" for r in pins).encode()
    lineage = made_of(model_lineage(b.store, b.odb, exact, None))
    model = {"name": mv.name, "version": mv.version, "uri": exact, "source": mv.source,
             "run_id": mv.run_id, "digest": mv.digest, "flavor": meta.loader,
             "created": mv.creation_timestamp}
    target = Path(out_dir) / f"{_UNSAFE.sub('_', mv.name)}-v{mv.version}{SUFFIX}"
    manifest = write_verified(target, files, model, lineage)
    with b.writing_objects():
        object_id, size = b.odb.add_file(target)
    record = b.store.record_package(mv.name, mv.version, manifest.digest, object_id, size,
                                    current_user())
    return Built(target, manifest, object_id, record)


def made_of(lineage: dict[str, Any]) -> dict[str, Any]:
    """A version's lineage without what the registry may change later."""
    kept = {k: v for k, v in lineage.items() if k not in VOLATILE_LINEAGE}
    for part, mutable in (("model", MUTABLE_MODEL_FIELDS), ("run", MUTABLE_RUN_FIELDS),
                          ("git", ("tags",))):
        if isinstance(kept.get(part), dict):
            kept[part] = {k: v for k, v in kept[part].items() if k not in mutable}
    return kept


def write_package(target: Path, files: dict[str, Source], model: dict[str, Any],
                  lineage: dict[str, Any], cairn_version: str | None = None) -> str:
    """Write the package of `files` (package path → bytes or a file) to `target`,
    atomically; its digest. `cairn_version`: this Cairn's unless given (a golden test)."""
    return write_verified(target, files, model, lineage, cairn_version).digest


def write_verified(target: Path, files: dict[str, Source], model: dict[str, Any],
                   lineage: dict[str, Any], cairn_version: str | None = None) -> Manifest:
    """`write_package`, returning the manifest of what was written: the temp file is
    re-read and verified before it replaces `target`, so a failed build leaves the
    package that was there before."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            write_archive(out, files, model, lineage, cairn_version)
            out.flush()
            os.fsync(out.fileno())
        manifest = open_package(tmp).manifest  # what was written, re-read and re-hashed
        os.chmod(tmp, 0o666 & ~_umask())  # as any new file, not mkstemp's 0600
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return manifest


def write_archive(out: BinaryIO, files: dict[str, Source], model: dict[str, Any],
                  lineage: dict[str, Any], cairn_version: str | None = None) -> None:
    """The package's bytes, unchecked (`write_verified` checks them)."""
    from cairn import __version__

    entries: list[FileEntry] = []
    blobs: dict[str, archive.BlobSource] = {}
    for name in sorted(files):
        source = files[name]
        hexdigest, size = _hash(source)
        entries.append(FileEntry(name, f"sha256:{hexdigest}", size))
        blobs[hexdigest] = source
    document = manifest_document(cairn_version or __version__, model, lineage, entries)
    config, oci = oci_manifest(document, entries, model)
    for blob in (document, config, oci):
        blobs[hashlib.sha256(blob).hexdigest()] = blob
    archive.write(out, oci_index(oci, ref_name(model)), blobs)


def _umask() -> int:
    mask = os.umask(0o022)  # reading it means setting it: put it straight back
    os.umask(mask)
    return mask


def _hash(source: Source) -> tuple[str, int]:
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest(), len(source)
    hasher = hashlib.sha256()
    size = 0
    with open(source, "rb") as f:
        while chunk := f.read(archive.CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size


def model_files(model_dir: Path) -> dict[str, Source]:
    """Every file of a model directory, as `model/<path>`."""
    found: dict[str, Source] = {}
    for dirpath, dirs, names in os.walk(model_dir):
        dirs.sort()
        for name in names:
            path = Path(dirpath) / name
            found[f"{MODEL_DIR}/{path.relative_to(model_dir).as_posix()}"] = path
    return found


def include_files(includes: Sequence[str], root: Path) -> dict[str, Source]:
    """`--include`d files and directories (below `root`, checked as every repository
    path is), as `include/<path relative to root>`."""
    checker = paths.Root(root)
    found: dict[str, Source] = {}
    for given in includes:
        rel = os.path.relpath(os.path.abspath(given), root).replace(os.sep, "/")
        where = checker.check(rel, "--include", advice="include files inside the project")
        if where.is_dir():
            for dirpath, dirs, names in os.walk(where):
                dirs.sort()
                for name in names:
                    inner = Path(dirpath, name).relative_to(root).as_posix()
                    found[f"{INCLUDE_DIR}/{inner}"] = checker.check(
                        inner, "--include", advice="include files inside the project")
        elif where.is_file():
            found[f"{INCLUDE_DIR}/{paths.normalise(rel)}"] = where
        else:
            raise UserError(f"--include {given}: no such file or directory")
    return found


def serving_yaml(flavor: str, batch_size: int) -> bytes:
    from cairn import yamlfile

    return yamlfile.dump({"entry_point": MODEL_DIR, "flavor": flavor, "batch_size": batch_size,
                          "resources": dict(DEFAULT_RESOURCES)}, sort_keys=True).encode()


def pinned(requirements: list[str], versions: dict[str, str]) -> list[str]:
    """Recorded requirements, each unpinned one pinned to the version recorded with the
    model (library_versions) when there is one."""
    out = []
    for req in requirements:
        name = re.split(r"[\s<>=!~;\[@]", req, maxsplit=1)[0]
        if "==" not in req and "@" not in req and name in versions:
            out.append(f"{name}=={versions[name]}")
        else:
            out.append(req)
    return out


def read_requirements(path: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"--requirements {path}: no such file") from None
    except (IsADirectoryError, UnicodeDecodeError) as e:
        raise UserError(f"--requirements {path}: not a text file ({e})") from None
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
