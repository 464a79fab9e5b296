"""`cairn package …`: build, verify, sign, keygen, inspect and extract model packages
(cairn.packaging), returning plain results for the CLI to show."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.packaging.build import DEFAULT_BATCH_SIZE, Built, build_package
from cairn.packaging.load import extract_package
from cairn.packaging.manifest import Manifest
from cairn.packaging.sign import check_signature, keygen, sign_package, signatures_of
from cairn.packaging.verify import open_package


def build(*, uri: str, out_dir: str = "dist", includes: Sequence[str] = (),
          requirements: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> Built:
    """Package the version `uri` names; stored in the object store and recorded."""
    return build_package(uri, out_dir, includes, requirements, batch_size)


@dataclass(frozen=True)
class Verified:
    manifest: Manifest
    key_id: str | None  # the key whose signature checked out, when a key was given


def verify(*, path: str, key: str | None = None) -> Verified:
    package = open_package(path)
    key_id = None if key is None else check_signature(path, package.manifest.digest, key)
    return Verified(package.manifest, key_id)


def sign(*, path: str, key: str) -> tuple[Path, str, str]:
    """(signature file, package digest, key id)."""
    return sign_package(path, key)


def make_keys(*, private: str, public: str | None = None) -> tuple[Path, Path, str]:
    """(private key file, public key file, key id); the public one defaults to PRIVATE
    with a .pub suffix."""
    priv = Path(private)
    pub = Path(public) if public else priv.with_suffix(".pub")
    if pub == priv:
        pub = Path(f"{priv}.pub")
    return priv, pub, keygen(priv, pub)


def inspect(*, path: str) -> dict[str, Any]:
    """Manifest, schema, lineage and signatures, read without extracting anything."""
    package = open_package(path)
    return {**package.manifest.to_dict(), "path": os.fspath(path),
            "signatures": signatures_of(package)}


def extract(*, path: str, out: str, key: str | None = None) -> Manifest:
    return extract_package(path, out, key)
