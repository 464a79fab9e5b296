"""Detached ed25519 signatures of a package's digest, in ``FILE.sig`` beside it.

Signing never changes the package (its digest is its identity), so a signature is a
separate file: JSON, ``{"format": "cairn-signature/1", "digest": …, "signatures":
[{"algorithm": "ed25519", "key_id": …, "signature": <base64>}]}``. What is signed is the
bytes ``cairn-package-signature/1\\n<digest>``; ``key_id`` is the sha256 of the raw
public key (to say which key signed, not to trust it). Keys are PEM files: PKCS#8
private keys (written 0600), SubjectPublicKeyInfo public keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.errors import IntegrityError, NotFoundError, UserError

if TYPE_CHECKING:
    from cairn.packaging.verify import Package

SIGNATURE_FORMAT = "cairn-signature/1"
SIG_SUFFIX = ".sig"
_CONTEXT = b"cairn-package-signature/1\n"


def signature_path(package: str | os.PathLike[str]) -> Path:
    return Path(str(package) + SIG_SUFFIX)


def keygen(private: str | os.PathLike[str], public: str | os.PathLike[str]) -> str:
    """Write a new key pair (the private file 0600, never over an existing file); its
    key id."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    priv_path, pub_path = Path(private), Path(public)
    for p in (priv_path, pub_path):
        if p.exists() or p.is_symlink():
            raise UserError(f"{p} already exists; keygen never overwrites a key")
        if not p.parent.is_dir():
            raise UserError(f"{p.parent} is not a directory; create it first")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(priv_path, 0o600)  # whatever the umask
    pub_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return _key_id(key.public_key())


def sign_package(package_file: str | os.PathLike[str],
                 private_key: str | os.PathLike[str]) -> tuple[Path, str, str]:
    """Verify the package, then add (or renew) this key's signature in FILE.sig;
    (signature file, digest, key id)."""
    from cairn.packaging.verify import open_package

    package = open_package(package_file)
    key = _private_key(Path(private_key))
    digest = package.manifest.digest
    key_id = _key_id(key.public_key())
    entry = {"algorithm": "ed25519", "key_id": key_id,
             "signature": base64.b64encode(key.sign(_CONTEXT + digest.encode())).decode()}
    sig_file = signature_path(package_file)
    kept = [s for s in _existing(sig_file, digest) if s.get("key_id") != key_id]
    document = {"format": SIGNATURE_FORMAT, "digest": digest,
                "signatures": sorted([*kept, entry], key=lambda s: str(s.get("key_id")))}
    tmp = sig_file.with_name(f".{sig_file.name}.tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, sig_file)
    return sig_file, digest, key_id


def check_signature(package_file: str | os.PathLike[str], digest: str,
                    public_key: str | os.PathLike[str]) -> str:
    """The key id, if FILE.sig holds `public_key`'s valid signature of `digest`; else an
    IntegrityError saying what is wrong."""
    from cryptography.exceptions import InvalidSignature

    key = _public_key(Path(public_key))
    key_id = _key_id(key)
    sig_file = signature_path(package_file)
    document = read_signatures(sig_file)
    if document is None:
        raise IntegrityError(f"{package_file} has no signature ({sig_file} is missing); sign "
                             "it with `cairn package sign`")
    if document.get("digest") != digest:
        raise IntegrityError(f"{sig_file} signs {document.get('digest')}, not this package "
                             f"({digest})")
    signatures = [s for s in document.get("signatures") or [] if isinstance(s, dict)]
    mine = [s for s in signatures if s.get("key_id") == key_id]
    if not mine:
        others = ", ".join(str(s.get("key_id", "?"))[:16] for s in signatures) or "none"
        raise IntegrityError(f"{package_file} is not signed by key {key_id[:16]} "
                             f"({public_key}); it is signed by: {others}")
    try:
        key.verify(base64.b64decode(str(mine[0].get("signature")), validate=True),
                   _CONTEXT + digest.encode())
    except (InvalidSignature, ValueError):
        raise IntegrityError(f"{sig_file}: the signature by key {key_id[:16]} does not match "
                             f"package {digest} (forged or damaged)") from None
    return key_id


def read_signatures(sig_file: Path) -> dict[str, Any] | None:
    """The signature document, None when there is none."""
    try:
        document = json.loads(sig_file.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise IntegrityError(f"{sig_file}: not a signature file ({e})") from None
    if not isinstance(document, dict) or document.get("format") != SIGNATURE_FORMAT:
        raise IntegrityError(f"{sig_file}: not a {SIGNATURE_FORMAT} file")
    return document


def signatures_of(package: Package) -> list[dict[str, Any]]:
    """What `inspect` shows: each signature's key id (unchecked: no key was given)."""
    document = read_signatures(signature_path(package.path))
    if document is None:
        return []
    same = document.get("digest") == package.manifest.digest
    return [{"key_id": s.get("key_id"), "algorithm": s.get("algorithm"),
             "for_this_digest": same} for s in document.get("signatures") or []
            if isinstance(s, dict)]


def _key_id(public: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _private_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(_key_bytes(path), password=None)
    except (ValueError, TypeError) as e:
        raise UserError(f"{path} is not an unencrypted PEM private key ({e}); make one with "
                        "`cairn package keygen`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{path} is not an ed25519 key; make one with `cairn package keygen`")
    return key


def _public_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(_key_bytes(path))
    except (ValueError, TypeError) as e:
        raise UserError(f"{path} is not a PEM public key ({e}); give the .pub file "
                        "`cairn package keygen` wrote") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UserError(f"{path} is not an ed25519 public key")
    return key


def _key_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no key file {path}") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, not a key file") from None


def _existing(sig_file: Path, digest: str) -> list[dict[str, Any]]:
    """Signatures already beside the package, if they sign this digest (else stale)."""
    document = read_signatures(sig_file)
    if document is None or document.get("digest") != digest:
        return []
    return [s for s in document.get("signatures") or [] if isinstance(s, dict)]
