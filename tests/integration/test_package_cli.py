"""`cairn package …` end to end in a git + Cairn project: build (twice, anywhere, the
same bytes), the registry's record, lineage, gc, signing, tampering, extract, --include."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn.tracking.backend import backend
from tests.conftest import CliRepo

pytestmark = pytest.mark.usefixtures("fresh_tracking")


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, target = load_iris(return_X_y=True, as_frame=True)
    return LogisticRegression(max_iter=300).fit(features, target), features


@pytest.fixture
def registered(repo: CliRepo, fitted: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
               ) -> CliRepo:
    monkeypatch.setenv("CAIRN_PACKAGE_CACHE", str(repo.root.parent / "package-cache"))
    model, features = fitted
    with cairn.start_run():
        cairn.log_params({"lr": 0.01})
        cairn.log_metrics({"f1": 0.93})
        cairn.sklearn.log_model(model, "model", input_example=features[:5],
                                registered_model_name="fraud")
    repo.cairn("models", "promote", "fraud", "1", "--to", "Production")
    return repo


def out_json(repo: CliRepo, *args: str) -> Any:
    return json.loads(repo.cairn(*args, "--json").output)


def test_build_twice_anywhere_gives_the_same_bytes_and_is_recorded(
        registered: CliRepo, tmp_path: Path) -> None:
    repo = registered
    built = out_json(repo, "package", "build", "models:/fraud/Production")
    first = Path(built["path"])
    assert first == Path("dist/fraud-v1.cairnpkg")
    sub = repo.root / "elsewhere"
    sub.mkdir()
    src = Path(cairn.__file__).resolve().parents[1]
    env = {**os.environ, "TZ": "Pacific/Kiritimati", "PYTHONPATH": str(src),
           "CAIRN_PACKAGE_CACHE": str(tmp_path / "other-cache")}
    proc = subprocess.run([sys.executable, "-m", "cairn", "package", "build",
                           "models:/fraud/1", "-o", str(tmp_path / "again"), "--json"],
                          cwd=sub, env=env, umask=0o077, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    second = tmp_path / "again" / "fraud-v1.cairnpkg"
    assert json.loads(proc.stdout)["digest"] == built["digest"]
    assert second.read_bytes() == (repo.root / first).read_bytes()
    assert oct(second.stat().st_mode & 0o777) == oct(0o644 & ~0o077)
    chain = out_json(repo, "models", "lineage", "models:/fraud/1")
    assert [p["digest"] for p in chain["packages"]] == [built["digest"]]
    assert chain["packages"][0]["object_id"] == built["object_id"]
    assert built["digest"][7:23] in repo.cairn("models", "lineage", "models:/fraud/1").output
    assert backend().odb.exists(built["object_id"])
    repo.cairn("gc", "--force")
    assert backend().odb.exists(built["object_id"])  # the packages provider keeps it


def test_inspect_shows_manifest_schema_lineage_and_signatures(registered: CliRepo) -> None:
    repo = registered
    path = out_json(repo, "package", "build", "models:/fraud/1")["path"]
    found = out_json(repo, "package", "inspect", path)
    assert found["model"]["uri"] == "models:/fraud/1" and found["model"]["flavor"] == "sklearn"
    assert found["lineage"]["params"] == {"lr": "0.01"}
    assert found["lineage"]["metrics"] == {"f1": 0.93}
    assert "packages" not in found["lineage"]  # the registry now, not the version
    assert found["lineage"]["model"]["version"] == 1 and found["lineage"]["run"]["run_id"]
    assert [c["name"] for c in found["schema"]["inputs"]["columns"]][:1] == [
        "sepal length (cm)"]
    assert any(r.startswith("scikit-learn==") for r in found["requirements"])
    assert found["signatures"] == []
    text = repo.cairn("package", "inspect", path).output
    assert "fraud v1 (sklearn)" in text and "signature" in text


def test_sign_verify_wrong_key_and_a_flipped_byte(registered: CliRepo) -> None:
    repo = registered
    path = out_json(repo, "package", "build", "models:/fraud/1")["path"]
    repo.cairn("package", "keygen", "ours.pem")
    repo.cairn("package", "keygen", "theirs.pem", "theirs.pub")
    assert (repo.root / "ours.pub").exists()
    assert "signed sha256:" in repo.cairn("package", "sign", path, "--key", "ours.pem").output
    out = repo.cairn("package", "verify", path, "--key", "ours.pub").output
    assert out.startswith(f"ok {path}: sha256:") and "signed by key" in out
    wrong = repo.cairn("package", "verify", path, "--key", "theirs.pub", ok=False)
    assert wrong.exit_code == 1 and "is not signed by key" in wrong.stderr
    data = bytearray((repo.root / path).read_bytes())
    data[len(data) // 2] ^= 0x10
    (repo.root / path).write_bytes(bytes(data))
    bad = repo.cairn("package", "verify", path, ok=False)
    assert bad.exit_code == 1 and bad.stderr.startswith("error: ") and path in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_extract_and_include(registered: CliRepo) -> None:
    repo = registered
    repo.write("prep/features.py", "def prepare(x):\n    return x\n")
    path = out_json(repo, "package", "build", "models:/fraud/1", "--include", "prep",
                    "-o", "out")["path"]
    repo.cairn("package", "extract", path, "-o", "unpacked")
    assert (repo.root / "unpacked/include/prep/features.py").read_text().startswith("def")
    assert (repo.root / "unpacked/model/cairn-model.yaml").exists()
    outside = repo.root.parent / "secret.txt"
    outside.write_text("no")
    refused = repo.cairn("package", "build", "models:/fraud/1", "--include", str(outside),
                         ok=False)
    assert refused.exit_code == 2 and "--include" in refused.stderr
    reqs = repo.write("reqs.txt", "# pinned\nscikit-learn==1.4.0\n")
    out = out_json(repo, "package", "build", "models:/fraud/1", "--requirements", str(reqs),
                   "-o", "pinned")
    assert out["requirements"] == ["scikit-learn==1.4.0"]


def test_build_refuses_what_is_not_a_version(registered: CliRepo) -> None:
    repo = registered
    result = repo.cairn("package", "build", "runs:/abc/model", ok=False)
    assert result.exit_code == 2 and "registered version" in result.stderr
    missing = repo.cairn("package", "build", "models:/fraud/9", ok=False)
    assert missing.exit_code == 1 and "no version 9" in missing.stderr
    repo.write("afile", "x")
    onto_file = repo.cairn("package", "build", "models:/fraud/1", "-o", "afile", ok=False)
    assert onto_file.exit_code == 2 and "is a file" in onto_file.stderr
    junk = repo.write("junk.cairnpkg", b"\0" * 10240)
    bad = repo.cairn("package", "inspect", str(junk), ok=False)
    assert bad.exit_code == 1 and bad.stderr.startswith("error: ")
