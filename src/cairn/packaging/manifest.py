"""What a package says about itself: MANIFEST.json, the OCI manifest and index, in their
canonical JSON encoding (docs/formats.md, "Model packages (format 1)").

MANIFEST.json is the OCI manifest's first layer: the package format, the Cairn version,
the model (name, version, source, run, the model directory's digest, flavor), the whole
lineage of the version, and every other file (path, sha256 digest, size) in the order
of the OCI manifest's other layers, one layer per file. The config is a minimal OCI image
config, so the standard tools (`skopeo inspect`) read a package as they read an
image. serving.yaml, schema.json and requirements.txt are files like any other;
`Manifest` carries them parsed.

The OCI manifest's sha256 is the package's digest, its identity: it names the config
and every layer by digest, so it covers every byte a package holds.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cairn.errors import IntegrityError

PACKAGE_FORMAT_NAME = "cairn-package"
PACKAGE_VERSION = 1
PACKAGE_FORMAT = f"{PACKAGE_FORMAT_NAME}/{PACKAGE_VERSION}"
SUFFIX = ".cairnpkg"
MAX_TIMESTAMP_MS = 253402300800000  # year 10000: what datetime can show

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.cairn.package.v1"
IMAGE_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_TYPE = "application/vnd.cairn.package.manifest.v1+json"
FILE_TYPE = "application/vnd.cairn.package.file.v1"
TITLE = "org.opencontainers.image.title"
VERSION = "org.opencontainers.image.version"
REF_NAME = "org.opencontainers.image.ref.name"
FORMAT_ANNOTATION = "dev.cairn.package.format"

MANIFEST_FILE = "MANIFEST.json"
SERVING_FILE = "serving.yaml"
SCHEMA_FILE = "schema.json"
REQUIREMENTS_FILE = "requirements.txt"
MODEL_DIR = "model"
INCLUDE_DIR = "include"


def canonical_json(value: Any) -> bytes:
    """The one encoding: sorted keys, no spaces, UTF-8, no NaN (non-finite floats are
    spelled as strings, as the store's wire codec does)."""
    return json.dumps(_finite(value), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode("utf-8")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class FileEntry:
    path: str  # posix, relative to the package root
    digest: str  # sha256:<hex>
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "digest": self.digest, "size": self.size}


@dataclass
class Manifest:
    """A verified package's description (`verify_package` returns one)."""

    digest: str  # sha256:<hex> of the OCI manifest: the package's identity
    package_version: int
    cairn_version: str
    model: dict[str, Any]  # name, version, uri, source, run_id, digest, flavor
    lineage: dict[str, Any]
    files: list[FileEntry]
    serving: dict[str, Any] = field(default_factory=dict)  # serving.yaml, parsed
    schema: dict[str, Any] | None = None  # schema.json, parsed
    requirements: list[str] = field(default_factory=list)
    size: int = 0  # of the package file

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "package_version": self.package_version,
                "format": f"{PACKAGE_FORMAT_NAME}/{self.package_version}",
                "cairn_version": self.cairn_version, "model": self.model,
                "lineage": self.lineage, "files": [f.to_dict() for f in self.files],
                "serving": self.serving, "schema": self.schema,
                "requirements": self.requirements, "size": self.size}


def manifest_document(cairn_version: str, model: dict[str, Any], lineage: dict[str, Any],
                      files: list[FileEntry]) -> bytes:
    """MANIFEST.json's bytes."""
    return canonical_json({"format": PACKAGE_FORMAT, "cairn_version": cairn_version,
                           "model": model, "lineage": lineage,
                           "files": [f.to_dict() for f in files]})


def image_config(model: dict[str, Any], layers: list[str]) -> bytes:
    """The OCI manifest's config: a minimal OCI image config (what `skopeo inspect` and
    registries read), its labels naming the model, its diff_ids the (uncompressed)
    layers. Everything Cairn reads is in MANIFEST.json, the first layer."""
    config: dict[str, Any] = {
        "architecture": "unknown", "os": "unknown",
        "config": {"Labels": labels(model)},
        "rootfs": {"type": "layers", "diff_ids": layers}}
    created = model.get("created")
    if isinstance(created, int):  # the version's registration time: a recorded time
        config["created"] = datetime.fromtimestamp(created / 1000, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")
    return canonical_json(config)


def labels(model: dict[str, Any]) -> dict[str, str]:
    return {TITLE: str(model["name"]), VERSION: str(model["version"]),
            FORMAT_ANNOTATION: str(PACKAGE_VERSION)}


def oci_manifest(document: bytes, files: list[FileEntry], model: dict[str, Any]
                 ) -> tuple[bytes, bytes]:
    """(config, OCI manifest) of a package whose MANIFEST.json is `document`."""
    layers = [{"mediaType": MANIFEST_TYPE, "digest": sha256(document), "size": len(document),
               "annotations": {TITLE: MANIFEST_FILE}}]
    layers += [{"mediaType": FILE_TYPE, "digest": f.digest, "size": f.size,
                "annotations": {TITLE: f.path}} for f in files]
    config = image_config(model, [str(layer["digest"]) for layer in layers])
    return config, canonical_json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST_TYPE, "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": IMAGE_CONFIG_TYPE, "digest": sha256(config),
                   "size": len(config)},
        "layers": layers, "annotations": labels(model)})


def ref_name(model: dict[str, Any]) -> str:
    """The OCI reference name (a tag: [A-Za-z0-9_.-]) of the package's one manifest."""
    return f"v{model['version']}"


def oci_index(manifest: bytes, ref: str) -> bytes:
    return canonical_json({
        "schemaVersion": 2, "mediaType": INDEX_TYPE,
        "manifests": [{"mediaType": OCI_MANIFEST_TYPE, "digest": sha256(manifest),
                       "size": len(manifest), "annotations": {REF_NAME: ref}}]})


# -- reading: each document must be exactly its canonical encoding ----------------------

def parse_canonical(data: bytes, what: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise IntegrityError(f"{where}: {what} is not JSON ({e})") from None
    if not isinstance(value, dict):
        raise IntegrityError(f"{where}: {what} is not a JSON object")
    if canonical_json(value) != data:
        raise IntegrityError(f"{where}: {what} is not in its canonical encoding")
    return value


def index_manifest_digest(index: dict[str, Any], where: str) -> tuple[str, int]:
    """The digest and size of the one OCI manifest an index names."""
    manifests = index.get("manifests")
    if index.get("schemaVersion") != 2 or not isinstance(manifests, list) \
            or len(manifests) != 1 or not isinstance(manifests[0], dict) \
            or manifests[0].get("mediaType") != OCI_MANIFEST_TYPE:
        raise IntegrityError(f"{where}: index.json must name exactly one OCI manifest")
    return _descriptor(manifests[0], "index.json", where)


def _descriptor(value: Any, what: str, where: str) -> tuple[str, int]:
    if not isinstance(value, dict):
        raise IntegrityError(f"{where}: {what} has a malformed descriptor")
    digest, size = value.get("digest"), value.get("size")
    if not isinstance(digest, str) or not digest.startswith("sha256:") \
            or len(digest) != 71 or not isinstance(size, int) or size < 0:
        raise IntegrityError(f"{where}: {what} has a malformed descriptor "
                             f"(digest {digest!r}, size {size!r})")
    return digest, size


def layers_of(oci: dict[str, Any], where: str
              ) -> tuple[tuple[str, int], tuple[str, int], list[FileEntry]]:
    """The config, the MANIFEST.json layer and the files (title, digest, size) of an
    OCI manifest."""
    if oci.get("schemaVersion") != 2 or oci.get("mediaType") != OCI_MANIFEST_TYPE \
            or oci.get("artifactType") != ARTIFACT_TYPE:
        raise IntegrityError(f"{where}: the OCI manifest is not a Cairn package's "
                             f"(artifactType {oci.get('artifactType')!r})")
    config = oci.get("config")
    if not isinstance(config, dict) or config.get("mediaType") != IMAGE_CONFIG_TYPE:
        raise IntegrityError(f"{where}: the OCI manifest's config is not {IMAGE_CONFIG_TYPE}")
    layers = oci.get("layers")
    if not isinstance(layers, list) or not layers or not isinstance(layers[0], dict) \
            or layers[0].get("mediaType") != MANIFEST_TYPE:
        raise IntegrityError(f"{where}: the OCI manifest's first layer is not "
                             f"{MANIFEST_FILE} ({MANIFEST_TYPE})")
    files = []
    for layer in layers[1:]:
        digest, size = _descriptor(layer, "a layer", where)
        title = (layer.get("annotations") or {}).get(TITLE)
        if layer.get("mediaType") != FILE_TYPE or not isinstance(title, str):
            raise IntegrityError(f"{where}: layer {digest} is not a titled {FILE_TYPE}")
        files.append(FileEntry(title, digest, size))
    return (_descriptor(config, "the config", where),
            _descriptor(layers[0], MANIFEST_FILE, where), files)


def parse_manifest_document(doc: dict[str, Any], where: str
                            ) -> tuple[int, str, dict[str, Any], dict[str, Any],
                                       list[FileEntry]]:
    """MANIFEST.json: (format version, Cairn version, model, lineage, files)."""
    name, _, version = str(doc.get("format")).partition("/")
    if name != PACKAGE_FORMAT_NAME or not version.isdigit():
        raise IntegrityError(f"{where}: MANIFEST.json's format is {doc.get('format')!r}, not "
                             f"{PACKAGE_FORMAT!r}")
    if int(version) > PACKAGE_VERSION:
        raise IntegrityError(f"{where}: package format {doc['format']} is newer than this "
                             f"Cairn reads ({PACKAGE_FORMAT}); upgrade Cairn")
    model, lineage, files = doc.get("model"), doc.get("lineage"), doc.get("files")
    if not isinstance(model, dict) or not isinstance(lineage, dict) \
            or not isinstance(files, list):
        raise IntegrityError(f"{where}: MANIFEST.json lacks model, lineage or files")
    if not isinstance(model.get("name"), str) or not isinstance(model.get("version"), int) \
            or not isinstance(model.get("created", 0), int | None) \
            or not 0 <= (model.get("created") or 0) < MAX_TIMESTAMP_MS:
        raise IntegrityError(f"{where}: MANIFEST.json's model needs a name (text), a version "
                             "(a whole number) and a registration time in milliseconds")
    entries = []
    for f in files:
        if not isinstance(f, dict) or not isinstance(f.get("path"), str):
            raise IntegrityError(f"{where}: MANIFEST.json has a malformed file entry")
        digest, size = _descriptor(f, f"file {f['path']!r}", where)
        entries.append(FileEntry(f["path"], digest, size))
    return int(version), str(doc.get("cairn_version", "")), model, lineage, entries
