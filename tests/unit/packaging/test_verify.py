"""verify_package: a package checks out whole, and any byte changed anywhere is refused
with a message naming what it hit (the canonical form is part of the format)."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest

from cairn.errors import IntegrityError, NotFoundError
from cairn.packaging import archive
from cairn.packaging.manifest import MANIFEST_FILE
from cairn.packaging.verify import open_package, verify_package
from tests.unit.packaging.conftest import build, model_dir


def test_a_built_package_verifies_and_describes_itself(package: Path) -> None:
    manifest = verify_package(package)
    assert manifest.digest.startswith("sha256:") and len(manifest.digest) == 71
    assert manifest.package_version == 1
    assert (manifest.model["name"], manifest.model["version"]) == ("doubler", 3)
    assert manifest.lineage["params"] == {"lr": "0.1"}
    assert manifest.serving == {"batch_size": 8, "entry_point": "model", "flavor": "pyfunc",
                                "resources": {"cpu": 1, "memory_mb": 1024}}
    assert manifest.requirements == ["numpy==2.0.0"]
    paths = [f.path for f in manifest.files]
    assert paths == sorted(paths)
    assert "model/cairn-model.yaml" in paths and "model/code/pkg_doubler.py" in paths
    data = {f.path: f for f in manifest.files}
    weights = data["model/artifacts/weights/weights.txt"]
    assert (weights.digest, weights.size) == ("sha256:" + hashlib.sha256(b"2").hexdigest(), 1)


def test_the_archive_is_a_plain_tar_with_fixed_headers(package: Path) -> None:
    with tarfile.open(package) as tar:
        members = tar.getmembers()
    assert [m.name for m in members[:4]] == ["oci-layout", "index.json", "blobs", "blobs/sha256"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert {m.mode for m in members if m.isfile()} == {0o644}
    blobs = [m.name for m in members[4:]]
    assert blobs == sorted(blobs)
    assert package.stat().st_size % archive.RECORD == 0


def _regions(package: Path) -> dict[str, tuple[int, str]]:
    """An offset in each region of the archive, and what the error must say."""
    scan = open_package(package).scan
    pkg = open_package(package)
    weights = pkg.members["model/artifacts/weights/weights.txt"]
    code = pkg.members["model/code/pkg_doubler.py"]
    doc_hex = hashlib.sha256(pkg.document).hexdigest()
    doc = scan.blobs()[doc_hex]
    oci = scan.blobs()[pkg.manifest.digest[7:]]
    index = scan.members[1]
    return {
        "file data": (weights.offset, "file model/artifacts/weights/weights.txt"),
        "code file data": (code.offset + 10, "file model/code/pkg_doubler.py"),
        "MANIFEST.json": (doc.offset + 20, "MANIFEST.json"),
        "OCI manifest": (oci.offset + 30, "the OCI manifest"),
        "index.json": (index.offset + 40, "index.json"),
        "tar header name": (weights.offset - archive.BLOCK + 20, "tar header"),
        "tar header mtime": (weights.offset - archive.BLOCK + 140, "tar header"),
        "tar header uname": (weights.offset - archive.BLOCK + 270, "tar header"),
        "first tar header": (0, "tar header"),
        "padding": (weights.offset + weights.size + 3, "padding"),
        "trailer": (package.stat().st_size - 1, "end of the archive"),
        "oci-layout": (archive.BLOCK + 2, "oci-layout"),
    }


REGIONS = ["file data", "code file data", "MANIFEST.json", "OCI manifest", "index.json",
           "tar header name", "tar header mtime", "tar header uname", "first tar header",
           "padding", "trailer", "oci-layout"]


@pytest.mark.parametrize("region", REGIONS)
def test_one_flipped_byte_anywhere_is_refused_naming_it(package: Path, region: str) -> None:
    offset, named = _regions(package)[region]
    data = bytearray(package.read_bytes())
    data[offset] ^= 0x01
    package.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=named):
        verify_package(package)


def test_every_byte_of_a_small_region_is_covered(package: Path) -> None:
    """Not only the sampled offsets: each byte of the first headers and index."""
    original = package.read_bytes()
    for offset in range(0, 3 * archive.BLOCK, 7):
        data = bytearray(original)
        data[offset] ^= 0x20
        package.write_bytes(bytes(data))
        with pytest.raises(IntegrityError):
            verify_package(package)


def test_a_member_not_in_the_manifest_is_refused(package: Path, tmp_path: Path) -> None:
    extra = b"print('hi')\n"
    hexdigest = hashlib.sha256(extra).hexdigest()
    data = package.read_bytes()
    scan = archive.scan(package)
    end = max(m.offset + m.size + archive.padding(m.size) for m in scan.members)
    # a canonical member, in sorted position would need a rewrite: append it at the end
    member = archive.header(f"blobs/sha256/{hexdigest}", len(extra)) + extra \
        + b"\0" * archive.padding(len(extra))
    rest = b"\0" * archive.trailer(end + len(member))
    package.write_bytes(data[:end] + member + rest)
    with pytest.raises(IntegrityError, match="not in the manifest|out of order"):
        verify_package(package)


def test_a_canonical_archive_with_an_unlisted_blob_is_refused(package: Path) -> None:
    """Rewritten in canonical order with one more blob: the manifest does not name it."""
    pkg = open_package(package)
    blobs: dict[str, archive.BlobSource] = {
        hexdigest: pkg.scan.read(m) for hexdigest, m in pkg.scan.blobs().items()}
    extra = b"an extra file\n"
    blobs[hashlib.sha256(extra).hexdigest()] = extra
    index = pkg.scan.read(pkg.scan.members[1])
    with open(package, "wb") as out:
        archive.write(out, index, blobs)
    with pytest.raises(IntegrityError, match="is not in the manifest"):
        verify_package(package)


def test_a_foreign_member_name_is_refused(package: Path) -> None:
    data = package.read_bytes()
    scan = archive.scan(package)
    end = max(m.offset + m.size + archive.padding(m.size) for m in scan.members)
    member = archive.header("evil.py", 3) + b"x=1" + b"\0" * archive.padding(3)
    package.write_bytes(data[:end] + member + b"\0" * archive.trailer(end + len(member)))
    with pytest.raises(IntegrityError, match="'evil.py'.*not in the manifest"):
        verify_package(package)


def test_a_truncated_package_is_refused(package: Path) -> None:
    package.write_bytes(package.read_bytes()[:3000])
    with pytest.raises(IntegrityError, match="truncated|ends"):
        verify_package(package)


def test_not_a_package(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        verify_package(tmp_path / "none.cairnpkg")
    junk = tmp_path / "junk.cairnpkg"
    junk.write_bytes(b"hello" * 300)
    with pytest.raises(IntegrityError, match="tar header"):
        verify_package(junk)


def test_same_inputs_same_bytes(tmp_path: Path) -> None:
    model = model_dir(tmp_path)
    first, second = tmp_path / "a.cairnpkg", tmp_path / "b.cairnpkg"
    assert build(model, first) == build(model, second)
    assert first.read_bytes() == second.read_bytes()
    # one file more: another package, another digest
    third = tmp_path / "c.cairnpkg"
    assert build(model, third, {"include/notes.txt": b"n"}) != build(model, first)
    assert MANIFEST_FILE not in [f.path for f in verify_package(third).files]
