"""load_package and extract: a package is self-contained, verified before use, and its
code or pickles never run unless the caller trusts it (or checked its signature)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import cairn
from cairn.errors import IntegrityError, UserError
from cairn.flavors.pickling import UntrustedModelError
from cairn.packaging.load import extract_package, load_package
from cairn.packaging.sign import keygen, sign_package, signature_path
from cairn.packaging.verify import verify_package


def test_a_trusted_package_loads_and_predicts(package: Path) -> None:
    model, manifest = load_package(package, trusted=True)
    assert model.predict([1, 2, 3]) == [2, 4, 6]
    assert manifest.digest == verify_package(package).digest
    assert model.metadata.lineage["package_digest"] == manifest.digest
    assert model.metadata.lineage["params"] == {"lr": "0.1"}


def test_load_model_takes_a_package_uri(package: Path) -> None:
    assert cairn.load_model(f"package:{package}", trusted=True).predict([5]) == [10]


def test_an_untrusted_unsigned_package_runs_no_code(package: Path) -> None:
    with pytest.raises(UntrustedModelError):
        load_package(package)
    assert "pkg_doubler" not in sys.modules


def test_a_package_signed_by_the_given_key_runs_its_code(package: Path, tmp_path: Path) -> None:
    keygen(tmp_path / "k.pem", tmp_path / "k.pub")
    sign_package(package, tmp_path / "k.pem")
    model, _ = load_package(package, public_key=tmp_path / "k.pub")
    assert model.predict([4]) == [8]


def test_a_tampered_package_never_loads(package: Path) -> None:
    load_package(package, trusted=True)  # extracted once: the cache must not vouch for it
    data = bytearray(package.read_bytes())
    data[-20000 if len(data) > 20000 else 700] ^= 1
    package.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        load_package(package, trusted=True)


def test_a_changed_extraction_is_rebuilt(package: Path, tmp_path: Path) -> None:
    model, _ = load_package(package, trusted=True)
    weights = model.path / "artifacts" / "weights" / "weights.txt"
    assert not os.access(weights, os.W_OK) or os.geteuid() == 0  # read-only (root writes anyway)
    os.chmod(weights, 0o644)
    weights.write_text("5")
    sys.modules.pop("pkg_doubler", None)
    again, _ = load_package(package, trusted=True)
    assert again.predict([1]) == [2]


def test_extract_writes_every_file_and_the_manifest(package: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest = extract_package(package, out)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(["MANIFEST.json", *(f.path for f in manifest.files)])
    assert json.loads((out / "MANIFEST.json").read_text())["model"]["name"] == "doubler"
    with pytest.raises(UserError, match="not an empty directory"):
        extract_package(package, out)


def test_keygen_signs_and_a_wrong_key_fails(package: Path, tmp_path: Path) -> None:
    keygen(tmp_path / "a.pem", tmp_path / "a.pub")
    keygen(tmp_path / "b.pem", tmp_path / "b.pub")
    assert stat.S_IMODE((tmp_path / "a.pem").stat().st_mode) == 0o600
    with pytest.raises(UserError, match="already exists"):
        keygen(tmp_path / "a.pem", tmp_path / "c.pub")
    with pytest.raises(UserError, match="not a directory"):
        keygen(tmp_path / "nowhere" / "d.pem", tmp_path / "d.pub")
    assert not (tmp_path / "d.pub").exists()
    with pytest.raises(IntegrityError, match="no signature"):
        verify_package(package, tmp_path / "a.pub")
    sign_package(package, tmp_path / "a.pem")
    assert verify_package(package, tmp_path / "a.pub").digest
    with pytest.raises(IntegrityError, match="not signed by key"):
        verify_package(package, tmp_path / "b.pub")
    sign_package(package, tmp_path / "b.pem")  # a second signature is added beside
    assert verify_package(package, tmp_path / "b.pub") and verify_package(package,
                                                                         tmp_path / "a.pub")


def test_a_forged_signature_fails(package: Path, tmp_path: Path) -> None:
    keygen(tmp_path / "a.pem", tmp_path / "a.pub")
    sign_package(package, tmp_path / "a.pem")
    sig = signature_path(package)
    document = json.loads(sig.read_text())
    raw = document["signatures"][0]["signature"]
    document["signatures"][0]["signature"] = ("B" if raw[0] != "B" else "C") + raw[1:]
    sig.write_text(json.dumps(document))
    with pytest.raises(IntegrityError, match="does not match"):
        verify_package(package, tmp_path / "a.pub")


def test_a_package_loads_in_a_fresh_process_in_an_empty_directory(package: Path,
                                                                  tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    src = Path(cairn.__file__).resolve().parents[1]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "fresh-home"),
           "PYTHONPATH": str(src)}
    code = (f"import cairn; m = cairn.load_model('package:{package}', trusted=True); "
            "print([int(x) for x in m.predict([21])])")
    out = subprocess.run([sys.executable, "-c", code], cwd=empty, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[42]"
    assert list(empty.iterdir()) == []  # nothing written where it ran
    assert not list((tmp_path / "fresh-home").rglob(".cairn"))
