"""A package is untrusted input: one that lies about its files, or changes after it was
verified, or while it is built, is refused whole, and nothing of it is used."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest

from cairn.errors import IntegrityError
from cairn.packaging import archive, build
from cairn.packaging.build import model_files, serving_yaml, write_archive
from cairn.packaging.load import cache_dir, extract_package, extracted, load_package
from cairn.packaging.manifest import PACKAGE_FORMAT, SERVING_FILE, parse_manifest_document
from cairn.packaging.verify import open_package, verify_package
from tests.unit.packaging.conftest import LINEAGE, MODEL, model_dir

BOMB = b"".join([b"a: &a [x, x, x, x, x, x, x, x, x]\n"]
                + [f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n".encode()
                   for p, c in zip("abcdefgh", "bcdefghi", strict=True)])
SERVING = serving_yaml("pyfunc", 8)

# What a crafted MANIFEST.json may claim: (files added or replaced, model fields changed).
LIES: dict[str, tuple[dict[str, bytes], dict[str, Any]]] = {
    "serving.yaml with aliases": ({SERVING_FILE: SERVING + b"resources:\n" + BOMB}, {}),
    "a path not in normal form": ({"model/./twice.txt": b"x"}, {}),
    "a file named MANIFEST.json": ({"MANIFEST.json": b"{}"}, {}),
    "a file inside a file": ({"model/w": b"1", "model/w/inner": b"2"}, {}),
    "a file inside a file, apart": ({"model/w": b"1", "model/w-x": b"3",
                                     "model/w/inner": b"2"}, {}),
    "a model without a name": ({}, {"name": None}),
    "a version that is not a number": ({}, {"version": "3"}),
}


def craft(tmp_path: Path, files: dict[str, bytes], model: dict[str, Any]) -> Path:
    """A package written as the format says, with whatever its manifest claims."""
    sources: dict[str, build.Source] = {**model_files(model_dir(tmp_path)),
                                        SERVING_FILE: SERVING, **files}
    target = tmp_path / "crafted.cairnpkg"
    with open(target, "wb") as out:
        write_archive(out, sources, {**MODEL, **model}, LINEAGE)
    return target


@pytest.mark.parametrize("lie", list(LIES))
def test_a_manifest_that_lies_is_refused_before_anything_is_written(
        lie: str, tmp_path: Path) -> None:
    files, model = LIES[lie]
    crafted = craft(tmp_path, files, model)
    with pytest.raises(IntegrityError):
        verify_package(crafted)
    with pytest.raises(IntegrityError):
        extract_package(crafted, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bytes_changed_after_verification_are_never_extracted(package: Path) -> None:
    """Verify, then the file changes (replaced, or served by a hostile filesystem): what
    extraction reads is hashed again, and nothing is kept under the verified digest."""
    verified = open_package(package)
    member = verified.members["model/code/pkg_doubler.py"]
    data = bytearray(package.read_bytes())
    data[member.offset] ^= 0x01  # same size, one byte of the model's code
    package.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="changed after the package was verified"):
        extracted(verified)
    assert not any(cache_dir().glob("sha256-*")) if cache_dir().exists() else True
    with pytest.raises(IntegrityError):
        load_package(package, trusted=True)


def test_a_file_changed_while_building_leaves_the_previous_package(
        package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = package.read_bytes()
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w" * 5000)
    hashed = build._hash

    def hash_then_change(source: build.Source) -> tuple[str, int]:
        found = hashed(source)
        if source == weights:  # a writer appends between the hash and the copy
            weights.write_bytes(b"w" * 5000 + b"more")
        return found

    monkeypatch.setattr(build, "_hash", hash_then_change)
    with pytest.raises(IntegrityError, match="changed while the package was being built"):
        build.write_package(package, {SERVING_FILE: SERVING, "model/w.bin": weights},
                            MODEL, LINEAGE)
    assert package.read_bytes() == before
    assert [p.name for p in package.parent.iterdir()] == [package.name]


def test_a_worker_serves_only_the_package_its_parent_verified(package: Path,
                                                              tmp_path: Path) -> None:
    digest = verify_package(package).digest
    load_package(package, trusted=True, digest=digest)
    with pytest.raises(IntegrityError, match="not the .* that was verified"):
        load_package(package, trusted=True, digest="sha256:" + "0" * 64)


def test_a_registration_time_no_calendar_holds_is_refused() -> None:
    """(A writer cannot even make its OCI config; a reader must not crash on it.)"""
    doc = {"format": PACKAGE_FORMAT, "model": {**MODEL, "created": 10 ** 18},
           "lineage": {}, "files": []}
    with pytest.raises(IntegrityError, match="registration time"):
        parse_manifest_document(doc, "crafted.cairnpkg")


@pytest.mark.parametrize("size", [archive.USTAR_MAX_SIZE - 1, archive.USTAR_MAX_SIZE,
                                  9 << 30])
def test_headers_hold_files_of_any_size(size: int) -> None:
    """ustar's size field ends below 8 GiB; larger weights get GNU's base-256 field, which
    the reader (and OCI tools) parse back to the same size."""
    name = "blobs/sha256/" + "a" * 64
    block = archive.header(name, size)
    assert len(block) == archive.BLOCK
    assert tarfile.TarInfo.frombuf(block, "utf-8", "strict").size == size
    assert archive._parse_header(block, "x", 0) == (name, size, False)
