"""What `cairn repro` records in cairn.lock travels like tracked data: push, pull, the
git hooks, checkout and status cover its cached outs; `cache: false` outs stay git's;
push also sends what the model registry references."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CliRepo, clone, commit, git

PIPELINE = """\
stages:
  prep:
    cmd: mkdir -p data/processed;cp data/raw.txt data/processed/a.txt && echo b>data/processed/b.txt
    deps:
    - data/raw.txt
    outs:
    - data/processed
  train:
    cmd:
    - mkdir -p models && cat data/processed/a.txt params.yaml > models/model.bin
    - cat params.yaml > metrics.json
    deps:
    - data/processed
    params:
    - lr
    outs:
    - models/model.bin
    metrics:
    - metrics.json:
        cache: false
"""


def pipeline_repo(repo: CliRepo, store: Path) -> None:
    repo.cairn("remote", "add", "-d", "origin", str(store))
    repo.write("cairn.yaml", PIPELINE)
    repo.write("params.yaml", "lr: 1\n")
    repo.write("data/raw.txt", "raw rows\n")
    repo.cairn("repro")
    commit(repo, "v1", "v1")


def retrain(repo: CliRepo, lr: int, tag: str) -> None:
    repo.write("params.yaml", f"lr: {lr}\n")
    repo.cairn("repro")
    commit(repo, f"lr {lr}", tag)


def test_a_fresh_clone_pulls_the_outputs_of_repro(repo: CliRepo, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline_repo(repo, tmp_path / "store")
    model = (repo.root / "models/model.bin").read_bytes()
    assert "cache: false" in (repo.root / "cairn.lock").read_text()
    assert "files pushed" in repo.cairn("push").output

    other = clone(repo, tmp_path / "clone", monkeypatch)
    assert not (other.root / "models/model.bin").exists()
    other.cairn("pull", "models/model.bin")  # a lock out as a target
    assert (other.root / "models/model.bin").read_bytes() == model
    assert not (other.root / "data/processed").exists()
    pulled = other.cairn("pull").output
    assert "M\tdata/processed/a.txt" in pulled and "metrics.json" not in pulled
    assert (other.root / "data/processed/a.txt").read_text() == "raw rows\n"
    assert (other.root / "data/processed/b.txt").read_text() == "b\n"
    assert other.cairn("status").output.strip() == "Data and pipelines are up to date."
    assert "in sync" in other.cairn("status", "--cloud").output


def test_git_checkout_of_an_older_tag_brings_back_its_outputs(repo: CliRepo, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    pipeline_repo(repo, tmp_path / "store")
    v1 = (repo.root / "models/model.bin").read_bytes()
    retrain(repo, 2, "v2")
    v2 = (repo.root / "models/model.bin").read_bytes()
    assert v1 != v2
    repo.git("checkout", "-q", "v1")  # the post-checkout hook checks the lock's outs out
    assert (repo.root / "models/model.bin").read_bytes() == v1
    repo.git("checkout", "-q", "main")
    assert (repo.root / "models/model.bin").read_bytes() == v2

    repo.cairn("push", "--all-tags")
    other = clone(repo, tmp_path / "clone", monkeypatch)
    other.cairn("install-hooks")
    other.git("checkout", "-q", "v1")  # fetched from the remote by the hook
    assert (other.root / "models/model.bin").read_bytes() == v1
    other.cairn("pull", "--rev", "v2")
    assert (other.root / "models/model.bin").read_bytes() == v1  # the workspace is at v1


def test_status_reports_a_modified_output_and_the_stage_to_rerun(repo: CliRepo,
                                                                tmp_path: Path) -> None:
    pipeline_repo(repo, tmp_path / "store")
    model = repo.root / "models/model.bin"
    model.unlink()  # the workspace copy may be a read-only link
    model.write_text("edited by hand\n")
    text = repo.cairn("status").output
    assert "modified:" in text and "models/model.bin" in text
    assert "changed stage:" in text and "train" in text and "prep" not in text
    lock = (repo.root / "cairn.lock").read_bytes()
    assert repo.cairn("commit").output.strip() == "Nothing to commit."  # repro records it
    assert (repo.root / "cairn.lock").read_bytes() == lock
    report = json.loads(repo.cairn("status", "--json").output)
    assert report["models/model.bin"]["state"] == "modified"
    assert report["train"]["state"] == "changed"
    assert report["train"]["reasons"] == ["out models/model.bin changed"]


def test_cache_false_outputs_are_left_to_git(repo: CliRepo, tmp_path: Path) -> None:
    pipeline_repo(repo, tmp_path / "store")
    (repo.root / "metrics.json").write_text("edited, not committed\n")
    (repo.root / "models/model.bin").unlink()
    out = repo.cairn("checkout", "--force").output
    assert out.split() == ["M", "models/model.bin"]
    assert (repo.root / "metrics.json").read_text() == "edited, not committed\n"
    assert "metrics.json" not in json.loads(repo.cairn("status", "--json").output)
    assert not any("metrics" in p.read_text() for p in repo.root.rglob(".gitignore"))


def test_get_and_api_read_still_find_lock_outputs(repo: CliRepo, tmp_path: Path) -> None:
    pipeline_repo(repo, tmp_path / "store")
    v1 = (repo.root / "models/model.bin").read_bytes()
    retrain(repo, 3, "v3")
    repo.cairn("get", ".", "models/model.bin", "--rev", "v1", "-o", str(tmp_path / "m1"))
    assert (tmp_path / "m1").read_bytes() == v1
    import cairn.api

    assert cairn.api.read("data/processed/a.txt", rev="v1", mode="rb") == b"raw rows\n"


REGISTER = """\
import cairn, numpy as np
from sklearn.linear_model import LogisticRegression
X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
with cairn.start_run():
    cairn.sklearn.log_model(LogisticRegression().fit(X, y), "model", input_example=X[:2],
                            registered_model_name="m")
"""
LOAD = """\
import cairn, numpy as np
print(cairn.load_model("models:/m/1").predict(np.array([[0.0], [3.0]])).tolist())
"""


def python(cwd: Path, code: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CAIRN_TRACKING_URI": f"sqlite:///{db}"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)


@pytest.mark.parametrize("how", ["cairn push", "pre-push hook"])
def test_push_sends_registered_models_for_clones_sharing_the_database(
        repo: CliRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    db = tmp_path / "tracking.db"
    repo.cairn("remote", "add", "-d", "origin", str(tmp_path / "store"))
    commit(repo, "remote")
    registered = python(repo.root, REGISTER, db)
    assert registered.returncode == 0, registered.stderr
    monkeypatch.setenv("CAIRN_TRACKING_URI", f"sqlite:///{db}")
    if how == "cairn push":
        assert "files pushed" in repo.cairn("push").output
    else:
        git(tmp_path, "init", "-q", "--bare", "origin.git")
        repo.git("remote", "add", "origin", str(tmp_path / "origin.git"))
        pushed = subprocess.run(["git", "push", "origin", "main"], cwd=repo.root,
                                capture_output=True, text=True, check=True)
        assert "cairn: pushed" in pushed.stderr + pushed.stdout

    other = clone(repo, tmp_path / "clone", monkeypatch)  # an empty cache
    loaded = python(other.root, LOAD, db)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[0, 1]"
