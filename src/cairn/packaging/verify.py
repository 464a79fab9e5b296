"""`verify_package`: a package re-hashed and checked against its own manifest, whole.

Checked, in this order, each failure one IntegrityError naming what it hit: every tar
header, padding and the trailer are canonical (archive.scan); index.json is exactly the
index of the OCI manifest; the OCI manifest, MANIFEST.json and every file match their
digests and sizes; MANIFEST.json lists exactly the manifest's layers; no member is
outside the manifest; serving.yaml, schema.json and requirements.txt parse. With a
public key, the detached signature beside the file must be that key's, over the digest.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn import paths
from cairn.errors import IntegrityError, NotFoundError, UserError
from cairn.packaging import archive
from cairn.packaging.manifest import (
    INDEX_TYPE,
    MANIFEST_FILE,
    REQUIREMENTS_FILE,
    SCHEMA_FILE,
    SERVING_FILE,
    FileEntry,
    Manifest,
    image_config,
    index_manifest_digest,
    layers_of,
    oci_index,
    parse_canonical,
    parse_manifest_document,
    ref_name,
)


@dataclass(frozen=True)
class Package:
    """A verified package: its manifest, and where each file's bytes lie in the archive."""

    path: Path
    manifest: Manifest
    scan: archive.Scan
    document: bytes  # MANIFEST.json
    members: dict[str, archive.Member]  # file path → its blob

    def read(self, file: str) -> bytes:
        return self.scan.read(self.members[file])


def verify_package(path: str | os.PathLike[str],
                   public_key: str | os.PathLike[str] | None = None) -> Manifest:
    """The manifest of the package at `path`, once every byte of it checked out (and,
    with `public_key`, its signature); else an IntegrityError naming what did not."""
    return open_package(path, public_key).manifest


def open_package(path: str | os.PathLike[str],
                 public_key: str | os.PathLike[str] | None = None) -> Package:
    package = _open(Path(path))
    if public_key is not None:
        from cairn.packaging.sign import check_signature

        check_signature(package.path, package.manifest.digest, public_key)
    return package


def _open(path: Path) -> Package:
    where = str(path)
    if not path.exists():
        raise NotFoundError(f"no package at {path}")
    if not path.is_file():
        raise UserError(f"{path} is not a package file (build one with `cairn package build`)")
    scan = archive.scan(path)
    blobs = scan.blobs()
    index_member = scan.members[1]
    index_bytes = scan.read(index_member)
    index = parse_canonical(index_bytes, "index.json", where)
    if index.get("mediaType") != INDEX_TYPE:
        raise IntegrityError(f"{where}: index.json is not an OCI image index")
    manifest_digest, manifest_size = index_manifest_digest(index, where)
    oci_bytes = _blob(scan, blobs, manifest_digest, manifest_size, "the OCI manifest", where)
    oci = parse_canonical(oci_bytes, "the OCI manifest", where)
    (config_digest, config_size), (doc_digest, doc_size), layers = layers_of(oci, where)
    document = _blob(scan, blobs, doc_digest, doc_size, "MANIFEST.json", where)
    version, cairn_version, model, lineage, files = parse_manifest_document(
        parse_canonical(document, "MANIFEST.json", where), where)
    if files != layers:
        raise IntegrityError(f"{where}: MANIFEST.json and the OCI manifest list different "
                             "files")
    config = _blob(scan, blobs, config_digest, config_size, "the OCI config", where)
    if config != image_config(model, [doc_digest, *(f.digest for f in files)]):
        raise IntegrityError(f"{where}: the OCI config does not describe this package")
    if index_bytes != oci_index(oci_bytes, ref_name(model)):
        raise IntegrityError(f"{where}: index.json is not the index of this package's "
                             "manifest (its reference name or a field was changed)")
    members = _files(blobs, files, where)
    known = {manifest_digest[7:], config_digest[7:], doc_digest[7:],
             *(f.digest[7:] for f in files)}
    for hexdigest, member in blobs.items():
        if hexdigest not in known:
            raise IntegrityError(f"{where}: member {member.name} is not in the manifest")
    package = Package(path, Manifest(manifest_digest, version, cairn_version, model, lineage,
                                     files, size=path.stat().st_size), scan, document, members)
    _read_declared(package, where)
    return package


def _blob(scan: archive.Scan, blobs: dict[str, archive.Member], digest: str, size: int,
          what: str, where: str) -> bytes:
    return scan.read(_member(blobs, digest, size, what, where))


def _member(blobs: dict[str, archive.Member], digest: str, size: int, what: str,
            where: str) -> archive.Member:
    member = blobs.get(digest[7:])
    if member is None:
        raise IntegrityError(f"{where}: {what} ({digest}) is missing from the archive")
    if member.sha256 != digest[7:]:
        raise IntegrityError(f"{where}: {what} ({member.name}) does not match its digest: "
                             "its bytes were changed")
    if member.size != size:
        raise IntegrityError(f"{where}: {what} ({member.name}) is {member.size} bytes, the "
                             f"manifest says {size}")
    return member


def _files(blobs: dict[str, archive.Member], files: list[FileEntry],
           where: str) -> dict[str, archive.Member]:
    found: dict[str, archive.Member] = {}
    previous = ""
    for f in files:
        normal = paths.clean(f.path, where, "packaged file",
                             advice="a package names only relative paths inside it")
        if normal != f.path or f.path == MANIFEST_FILE:
            raise IntegrityError(f"{where}: file {f.path!r} in MANIFEST.json is not a plain "
                                 "relative path of its own (a package writes exactly the "
                                 "paths it lists)")
        if f.path <= previous:
            raise IntegrityError(f"{where}: file {f.path!r} is out of order or repeated in "
                                 "MANIFEST.json")
        previous = f.path
        found[f.path] = _member(blobs, f.digest, f.size, f"file {f.path}", where)
    for name in found:
        parts = name.split("/")
        for n in range(1, len(parts)):
            if "/".join(parts[:n]) in found:
                raise IntegrityError(f"{where}: file {name!r} would be inside the file "
                                     f"{'/'.join(parts[:n])!r}")
    return found


def _read_declared(package: Package, where: str) -> None:
    """serving.yaml, schema.json and requirements.txt, parsed into the manifest."""
    from cairn import yamlfile

    manifest = package.manifest
    if SERVING_FILE not in package.members:
        raise IntegrityError(f"{where}: the package has no {SERVING_FILE}")
    try:
        serving = yamlfile.safe_load_plain(package.read(SERVING_FILE))
    except IntegrityError:
        raise
    except Exception as e:  # yaml's errors: a package that says nothing usable
        raise IntegrityError(f"{where}: {SERVING_FILE} is not plain YAML ({e})") from None
    manifest.serving = check_serving(serving, where)
    if SCHEMA_FILE in package.members:
        try:
            schema: Any = json.loads(package.read(SCHEMA_FILE))
        except ValueError as e:
            raise IntegrityError(f"{where}: {SCHEMA_FILE} is not JSON ({e})") from None
        manifest.schema = schema if isinstance(schema, dict) else None
    if REQUIREMENTS_FILE in package.members:
        text = package.read(REQUIREMENTS_FILE).decode("utf-8", errors="replace")
        manifest.requirements = [line.strip() for line in text.splitlines()
                                 if line.strip() and not line.lstrip().startswith("#")]


def check_serving(serving: Any, where: str) -> dict[str, Any]:
    """serving.yaml's fields: entry_point and flavor (strings), batch_size (a positive
    int), resources (a mapping)."""
    if not isinstance(serving, dict):
        raise IntegrityError(f"{where}: {SERVING_FILE} is not a mapping")
    batch = serving.get("batch_size")
    if not isinstance(serving.get("entry_point"), str) \
            or not isinstance(serving.get("flavor"), str) \
            or not isinstance(batch, int) or isinstance(batch, bool) or batch < 1 \
            or not isinstance(serving.get("resources", {}), dict):
        raise IntegrityError(f"{where}: {SERVING_FILE} needs entry_point and flavor (text), "
                             "batch_size (a positive whole number) and resources (a mapping)")
    return serving
