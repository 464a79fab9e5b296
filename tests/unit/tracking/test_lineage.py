"""Every run records its code, data, params and environment, cheaply."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cairn.objects.hashing import hash_bytes
from cairn.tracking import lineage
from tests.conftest import CliRepo

LOCK = """schema: cairn-lock/1
stages:
  train:
    cmd: python train.py
    deps:
    - path: data/raw.csv
      digest: %s
      size: 6
    outs:
    - path: models/model.onnx
      digest: %s
      size: 10
"""


def test_a_run_in_a_project_records_git_data_and_params(repo: CliRepo,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    repo.write("data/raw.csv", "a,b\n1\n")
    repo.cairn("add", "data/raw.csv")
    repo.write("params.yaml", "train:\n  lr: 0.01\n")
    repo.write("cairn.lock", LOCK % ("1" * 64, "2" * 64))
    repo.git("add", "-A")
    repo.git("commit", "-qm", "first")
    calls: list[Any] = []
    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a) or real_run(*a, **k))

    tags = lineage.capture(repo.root)

    assert len(calls) <= 2  # cheap: git status, and git diff only when dirty
    assert tags["cairn.git.commit"] == repo.git("rev-parse", "HEAD").strip()
    assert tags["cairn.git.branch"] == "main" and tags["cairn.git.dirty"] == "false"
    assert "cairn.git.diff_digest" not in tags
    data = json.loads(tags["cairn.data"])
    assert data["data/raw.csv"] == hash_bytes(b"a,b\n1\n")
    assert data["models/model.onnx"] == "2" * 64
    assert json.loads(tags["cairn.stages"]) == {"train": ["models/model.onnx"]}
    assert json.loads(tags["cairn.params"]) == {"train": {"lr": 0.01}}
    assert "numpy" in json.loads(tags["cairn.packages"])
    assert tags["cairn.python"] and tags["cairn.user"] and tags["cairn.host"]


def test_uncommitted_changes_mark_the_run_dirty_with_a_diff_digest(repo: CliRepo) -> None:
    repo.write("train.py", "print(1)\n")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "code")
    repo.write("train.py", "print(2)\n")
    tags = lineage.capture(repo.root)
    diff = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=repo.root,
                          capture_output=True, check=True).stdout
    assert tags["cairn.git.dirty"] == "true"
    assert tags["cairn.git.diff_digest"] == hash_bytes(diff)


def test_a_stage_regenerating_its_outputs_is_not_uncommitted_code(repo: CliRepo) -> None:
    """`repro` removes a stage's outs before running it; a git-tracked one (metrics,
    cache: false) then shows as deleted. That used to mark every pipeline run dirty."""
    repo.write("train.py", "print(1)\n")
    repo.write("metrics.json", '{"f1": 0.9}\n')
    repo.write("reports/summary.txt", "ok\n")
    repo.write("cairn.lock", LOCK.replace("    - path: models/model.onnx",
                                          "    - path: metrics.json\n      digest: %s\n"
                                          "      size: 1\n    - path: reports\n"
                                          "      digest: %s\n      size: 1\n"
                                          "    - path: models/model.onnx")
               % ("1" * 64, "3" * 64, "4" * 64, "2" * 64))
    repo.git("add", "-A")
    repo.git("commit", "-qm", "pipeline")
    (repo.root / "metrics.json").unlink()
    repo.write("reports/summary.txt", "being rewritten\n")
    assert lineage.capture(repo.root)["cairn.git.dirty"] == "false"
    repo.write("train.py", "print(2)\n")  # the code itself: still dirty
    assert lineage.capture(repo.root)["cairn.git.dirty"] == "true"


def test_outside_git_only_the_environment_is_recorded(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    tags = lineage.capture(None)
    assert not any(k.startswith("cairn.git.") for k in tags)
    assert json.loads(tags["cairn.source.argv"])


def test_a_broken_params_file_does_not_fail_the_run(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("a: [1,\n")
    assert "cairn.params" not in lineage.data_state(tmp_path)
