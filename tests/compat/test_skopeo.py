"""The standard OCI tools read a package as an image: Debian's skopeo inspects it and
copies it (`.ci/run` installs skopeo; skipped where it is missing)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from cairn.packaging.verify import open_package
from tests.unit.packaging.test_golden import FILES, LINEAGE, MODEL

SKOPEO = shutil.which("skopeo")
pytestmark = pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed")


def skopeo(*args: str) -> str:
    assert SKOPEO is not None
    proc = subprocess.run([SKOPEO, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def package(tmp_path: Path) -> Path:
    from cairn.packaging.build import write_package

    out = tmp_path / "golden-v1.cairnpkg"
    write_package(out, {**FILES, "model/weights.bin": b"\x00\x01" * 40000}, MODEL, LINEAGE)
    return out


def test_skopeo_inspect_reads_the_package(package: Path) -> None:
    pkg = open_package(package)
    found = json.loads(skopeo("inspect", f"oci-archive:{package}"))
    assert found["Digest"] == pkg.manifest.digest
    assert found["Labels"]["org.opencontainers.image.title"] == "golden"
    assert found["Labels"]["org.opencontainers.image.version"] == "1"
    assert len(found["Layers"]) == len(pkg.manifest.files) + 1  # MANIFEST.json, then files
    raw = skopeo("inspect", "--raw", f"oci-archive:{package}").encode()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == pkg.manifest.digest


def test_skopeo_copy_moves_every_blob_unchanged(package: Path, tmp_path: Path) -> None:
    pkg = open_package(package)
    target = tmp_path / "copied"
    skopeo("copy", "--quiet", f"oci-archive:{package}", f"dir:{target}")
    manifest = (target / "manifest.json").read_bytes()
    assert "sha256:" + hashlib.sha256(manifest).hexdigest() == pkg.manifest.digest
    for name, member in pkg.members.items():
        blob = target / member.sha256
        assert blob.read_bytes() == pkg.read(name), name
    layout = tmp_path / "layout"
    skopeo("copy", "--quiet", f"dir:{target}", f"oci:{layout}:v1")  # and on to an OCI layout
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == pkg.manifest.digest
