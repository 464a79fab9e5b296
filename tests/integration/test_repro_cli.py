"""`cairn repro` through the CLI: the contracted lines, --json, --dry, the run cache, and
errors as one line with their exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import CliRepo
from tests.s3_server import S3Bucket, s3_bucket, s3_server  # noqa: F401 - fixtures

RUN_CACHED = """\
stages:
  train:
    cmd: cat data.txt params.yaml > model.txt && echo '{"n":1}' > metrics.json
    deps: [data.txt]
    params: [train.lr]
    outs: [model.txt]
    metrics:
    - metrics.json: {cache: false}
"""


def set_lr(repo: CliRepo, lr: str) -> None:
    repo.write("params.yaml", f"train:\n  lr: {lr}\n")


@pytest.fixture
def pipeline(repo: CliRepo) -> CliRepo:
    repo.write("dvc.yaml", RUN_CACHED)
    repo.write("data.txt", "data\n")
    set_lr(repo, "0.01")
    repo.cairn("repro")
    return repo

SEED = """\
stages:
  preprocess:
    cmd: mkdir -p data/processed && cp data/raw/* data/processed/
    deps: [data/raw/]
    outs: [data/processed/]
  train:
    cmd: >-
      echo training && cat data/processed/* > models/classifier.pkl
      && echo '{"f1":0.9}' > metrics.json
    deps: [data/processed/]
    params: [train.learning_rate, train.epochs]
    outs: [models/classifier.pkl]
    metrics:
    - metrics.json: {cache: false}
"""


@pytest.fixture
def seed(repo: CliRepo) -> CliRepo:
    repo.write("dvc.yaml", SEED)
    repo.write("params.yaml", "train:\n  learning_rate: 0.01\n  epochs: 50\n")
    repo.write("data/raw/a.csv", "1,2\n")
    return repo


def lines(output: str, prefix: tuple[str, ...] = ("Running", "Stage", "Restored", "Would")
          ) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(prefix)]


def test_first_run_then_nothing_then_a_param(seed: CliRepo) -> None:
    first = seed.cairn("repro").output
    assert lines(first) == ["Running stage 'preprocess': never run before",
                            "Running stage 'train': never run before"]
    assert "git add cairn.lock data/.gitignore models/.gitignore" in first
    assert lines(seed.cairn("repro").output) == [
        "Stage 'preprocess' didn't change, skipping", "Stage 'train' didn't change, skipping"]
    seed.write("params.yaml", "train:\n  learning_rate: 0.02\n  epochs: 50\n")
    assert lines(seed.cairn("repro").output) == [
        "Stage 'preprocess' didn't change, skipping",
        "Running stage 'train': param train.learning_rate 0.01 → 0.02"]
    seed.write("params.yaml", "train:\n  learning_rate: 0.01\n  epochs: 50\n")
    assert lines(seed.cairn("repro").output)[1] == "Restored stage 'train' from the run cache"


def test_dry_run_lines(seed: CliRepo) -> None:
    seed.cairn("repro")
    seed.write("data/raw/a.csv", "9,9\n")
    assert lines(seed.cairn("repro", "--dry").output) == [
        "Would run stage 'preprocess': dep data/raw changed",
        "Would run stage 'train': upstream stage 'preprocess' would run"]


def test_json_keeps_command_output_off_stdout(seed: CliRepo) -> None:
    proc = seed.cairn_process("repro", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [
        {"stage": "preprocess", "action": "ran", "reasons": ["never run before"]},
        {"stage": "train", "action": "ran", "reasons": ["never run before"]}]
    assert "training" in proc.stderr


def test_failure_is_one_error_line_and_exit_1(seed: CliRepo) -> None:
    seed.cairn("repro")
    seed.write("dvc.yaml", SEED.replace("echo training &&", "exit 4 &&"))
    proc = seed.cairn_process("repro")
    assert proc.returncode == 1
    assert lines(proc.stdout) == ["Stage 'preprocess' didn't change, skipping",
                                  "Running stage 'train': cmd changed"]
    assert proc.stderr.strip() == (
        "error: stage 'train' failed: `exit 4 && cat data/processed/* > models/classifier.pkl "
        "&& echo '{\"f1\":0.9}' > metrics.json` exited with code 4; its outputs and cairn.lock "
        "were left as they were")


def test_bad_pipeline_fails_before_anything_runs(repo: CliRepo) -> None:
    repo.write("dvc.yaml", "stages:\n"
               "  a:\n    cmd: cp b.txt a.txt\n    deps: [b.txt]\n    outs: [a.txt]\n"
               "  b:\n    cmd: cp a.txt b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n")
    proc = repo.cairn_process("repro")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "cycle" in proc.stderr
    assert not (repo.root / "cairn.lock").exists()


def test_frozen_line_and_unknown_stage(seed: CliRepo) -> None:
    seed.write("dvc.yaml", SEED.replace("    outs: [data/processed/]\n",
                                        "    outs: [data/processed/]\n    frozen: true\n"))
    seed.write("data/processed/a.csv", "1,2\n")
    assert lines(seed.cairn("repro", "preprocess").output) == [
        "Stage 'preprocess' is frozen, skipping"]
    result = seed.cairn("repro", "nope", ok=False)
    assert result.exit_code != 0 and "nope" in result.output


def test_lock_held_by_another_process(seed: CliRepo) -> None:
    from cairn.project.mutex import repo_lock

    seed.cairn("config", "core.lock_timeout", "0.1")
    with repo_lock(seed.root / ".cairn" / "tmp" / "lock"):
        proc = seed.cairn_process("repro")
    assert proc.returncode == 3 and "locked" in proc.stderr


def test_parallel_flag(seed: CliRepo) -> None:
    assert len(lines(seed.cairn("repro", "-j", "2").output)) == 2
    assert seed.cairn("repro", "-j", "0", ok=False).exit_code == 2


def test_interrupted_stage_leaves_outputs_and_lock(repo: CliRepo) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    repo.write("in.txt", "x")
    repo.write("dvc.yaml", "stages:\n  slow:\n    cmd: echo v1 > out.txt\n"
               "    deps: [in.txt]\n    outs: [out.txt]\n")
    repo.cairn("repro")
    lock = (repo.root / "cairn.lock").read_bytes()
    repo.write("dvc.yaml", "stages:\n  slow:\n    cmd: echo partial > out.txt && sleep 30\n"
               "    deps: [in.txt]\n    outs: [out.txt]\n")
    # In a session of its own, so that Ctrl-C can reach it and its command as a
    # terminal would (the whole foreground process group).
    proc = subprocess.Popen([sys.executable, "-m", "cairn", "repro"], cwd=repo.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    out = repo.root / "out.txt"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (out.exists() and out.read_text() == "partial\n"):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert (repo.root / "out.txt").read_text() == "v1\n"
    assert (repo.root / "cairn.lock").read_bytes() == lock


@pytest.mark.parametrize("kind", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_push_and_pull_through_a_remote_after_the_cache_is_gone(
        pipeline: CliRepo, tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> None:
    model_1 = (pipeline.root / "model.txt").read_bytes()
    set_lr(pipeline, "0.02")
    pipeline.cairn("repro")
    if kind == "local":
        pipeline.cairn("remote", "add", "-d", "store", str(tmp_path / "remote"))
    else:
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        pipeline.cairn("remote", "add", "-d", "store", bucket.url())
        pipeline.cairn("remote", "modify", "store", "endpoint_url", bucket.endpoint)
    pushed = pipeline.cairn("push", "--run-cache")
    assert "2 run-cache entries pushed" in pushed.output
    assert "0 run-cache entries pushed" in pipeline.cairn("push", "--run-cache").output

    shutil.rmtree(pipeline.root / ".cairn" / "cache")
    (pipeline.root / "model.txt").unlink()
    pulled = pipeline.cairn("pull", "--run-cache")
    assert "2 run-cache entries fetched" in pulled.output
    set_lr(pipeline, "0.01")
    assert lines(pipeline.cairn("repro").output) == [
        "Restored stage 'train' from the run cache"]
    assert (pipeline.root / "model.txt").read_bytes() == model_1


def test_no_pipeline_is_an_error(repo: CliRepo) -> None:
    result = repo.cairn("repro", ok=False)
    assert result.exit_code == 1 and "no cairn.yaml or dvc.yaml" in result.output


def test_repro_pull_finds_a_run_on_the_remote(pipeline: CliRepo, tmp_path: Path) -> None:
    """A clone whose cache never saw a run restores it from the remote's run cache."""
    model_1 = (pipeline.root / "model.txt").read_bytes()
    pipeline.cairn("remote", "add", "-d", "store", str(tmp_path / "remote"))
    pipeline.cairn("push", "--run-cache")
    shutil.rmtree(pipeline.root / ".cairn" / "cache")
    set_lr(pipeline, "0.5")  # run something else first: the lock no longer matches lr 0.01
    pipeline.cairn("repro")
    shutil.rmtree(pipeline.root / ".cairn" / "cache" / "runs")
    set_lr(pipeline, "0.01")
    assert lines(pipeline.cairn("repro", "--pull", "--dry").output) == [
        "Would run stage 'train': param train.lr 0.5 → 0.01"]
    assert lines(pipeline.cairn("repro", "--pull").output) == [
        "Restored stage 'train' from the run cache"]
    assert (pipeline.root / "model.txt").read_bytes() == model_1


def test_killed_stage_gets_its_previous_outputs_back_next_time(repo: CliRepo) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    repo.write("in.txt", "x")
    repo.write("other.txt", "o")
    slow = "stages:\n  slow:\n    cmd: {cmd}\n    deps: [in.txt]\n    outs: [out.txt]\n" \
           "  other:\n    cmd: cp other.txt other.out\n    deps: [other.txt]\n" \
           "    outs: [other.out]\n"
    repo.write("dvc.yaml", slow.format(cmd="echo v1 > out.txt"))
    repo.cairn("repro")
    repo.write("dvc.yaml", slow.format(cmd="echo partial > out.txt && sleep 30"))
    proc = subprocess.Popen([sys.executable, "-m", "cairn", "repro", "slow"], cwd=repo.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    out = repo.root / "out.txt"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (out.exists() and out.read_text() == "partial\n"):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # no chance to clean up
    proc.wait(timeout=20)
    assert out.read_text() == "partial\n"
    repo.cairn("repro", "other")
    assert out.read_text() == "v1\n"
    assert not (repo.root / ".cairn" / "tmp" / "repro").exists()


def test_a_stage_whose_only_inputs_are_params_is_restored_from_the_run_cache(
        repo: CliRepo) -> None:
    # DVC counts params among a stage's deps: lr 1 -> 2 -> 1 restores the first run.
    repo.write("cairn.yaml", "stages:\n  p:\n    cmd: echo ${lr} $(date +%N) > p.txt\n"
                             "    params: [lr]\n    outs: [p.txt]\n")
    repo.write("params.yaml", "lr: 1\n")
    repo.cairn("repro")
    first = (repo.root / "p.txt").read_text()
    repo.write("params.yaml", "lr: 2\n")
    repo.cairn("repro")
    repo.write("params.yaml", "lr: 1\n")
    assert "Restored stage 'p' from the run cache" in repo.cairn("repro").output
    assert (repo.root / "p.txt").read_text() == first


@pytest.mark.parametrize("args", [(), ("--downstream", "use")])
def test_a_dep_missing_because_its_producer_did_not_run_names_that_stage(
        repo: CliRepo, args: tuple[str, ...]) -> None:
    # "add the stage that produces it" is the wrong advice when there is one.
    repo.write("in.txt", "1\n")
    repo.write("cairn.yaml", "stages:\n  fr:\n    cmd: cp in.txt fr.txt\n    deps: [in.txt]\n"
                             "    outs: [fr.txt]\n    frozen: true\n"
                             "  use:\n    cmd: cp fr.txt use.txt\n    deps: [fr.txt]\n"
                             "    outs: [use.txt]\n")
    result = repo.cairn("repro", *args, ok=False)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "its dep fr.txt does not exist" in result.stderr
    assert "stage 'fr' produces it" in result.stderr
    assert "add the stage" not in result.stderr


def test_a_missing_dep_tracked_by_a_pointer_file_says_to_check_it_out(repo: CliRepo) -> None:
    repo.write("data/raw.csv", "1\n")
    repo.cairn("add", "data")
    repo.write("cairn.yaml", "stages:\n  a:\n    cmd: cp data/raw.csv a.txt\n"
                             "    deps: [data/raw.csv]\n    outs: [a.txt]\n")
    shutil.rmtree(repo.root / "data")
    result = repo.cairn("repro", ok=False)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "data.cairn tracks it; run `cairn pull data`" in result.stderr


@pytest.mark.parametrize(("out", "said"), [(".cairn/cache", "inside .cairn/"),
                                           (".git/hooks", "inside .git/"),
                                           (".", "the repository root")])
def test_an_output_cairn_or_git_owns_is_refused_before_anything_runs(
        repo: CliRepo, out: str, said: str) -> None:
    # repro moves a stage's outs aside before it runs: never the cache or .git.
    repo.write("cairn.yaml", f"stages:\n  a:\n    cmd: touch ran\n    outs: ['{out}']\n")
    result = repo.cairn("repro", ok=False)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert said in result.stderr and "stage 'a'" in result.stderr
    assert not (repo.root / "ran").exists()
    assert (repo.root / ".cairn" / "cache").is_dir() and (repo.root / ".git" / "hooks").is_dir()


def test_a_pipeline_file_without_stages_is_not_called_missing(repo: CliRepo) -> None:
    repo.write("dvc.yaml", "stages:\n")
    result = repo.cairn("repro", ok=False)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "dvc.yaml declares no stages" in result.stderr
