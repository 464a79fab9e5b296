"""`cairn retention apply` as a user runs it: the plan it prints, the one-line errors, and a
kill -9 in the middle of deleting, after which a rerun finishes and nothing live is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from cairn.objects.hashing import hash_bytes
from tests.conftest import CliRepo
from tests.integration.test_faults import every_object_is_whole

MAKE_RUNS = """
import os, pathlib, sys
import cairn
runs, files = int(sys.argv[1]), int(sys.argv[2])
for r in range(runs):
    d = pathlib.Path("../scratch") / str(r)
    d.mkdir(parents=True)
    for f in range(files):
        (d / f"{f}.bin").write_bytes(os.urandom(64))
    (d / "shared.txt").write_text("shared by every run")
    with cairn.start_run(run_name=f"r{r}"):
        cairn.log_artifacts(str(d), "out")
        if r == 0:
            cairn.set_tag("keep", "yes")
"""


def make_runs(repo: CliRepo, runs: int, files: int) -> None:
    made = subprocess.run([sys.executable, "-c", MAKE_RUNS, str(runs), str(files)],
                          cwd=repo.root, capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr


def cache_count(repo: CliRepo) -> int:
    objects = repo.root / ".cairn" / "cache" / "objects"
    return sum(len(os.listdir(d)) for d in objects.iterdir()) if objects.exists() else 0


@pytest.fixture
def policy(repo: CliRepo) -> CliRepo:
    repo.cairn("config", "retention.runs.max_age", "0s")
    repo.cairn("config", "retention.runs.keep_if_tagged", "keep")
    return repo


def test_the_dry_run_prints_every_run_and_object_then_the_apply_does_it(policy: CliRepo
                                                                        ) -> None:
    repo = policy
    repo.write("data.txt", "shared by every run")  # the workspace tracks it too
    repo.cairn("add", "data.txt")
    make_runs(repo, 3, 2)

    shown = repo.cairn("retention", "apply", "--dry-run").output
    plan = json.loads(repo.cairn("retention", "apply", "--dry-run", "--json").output)
    assert shown.count("would delete run ") == 2  # r0 is tagged keep
    assert shown.count("would remove ") == len(plan["objects"]["cache"]) == 2 * (2 + 1)
    assert "Would delete 2 run(s); kept 1 old run(s) the policy keeps." in shown
    assert hash_bytes(b"shared by every run") not in plan["objects"]["cache"]

    done = json.loads(repo.cairn("retention", "apply", "--json").output)
    assert done["objects"] == plan["objects"] and done["runs"] == plan["runs"]
    assert "Deleted 0 run(s) (and the objects of 2 run(s) deleted before)" in repo.cairn(
        "retention", "apply").output
    listed = repo.cairn("runs", "list", "--json").output
    assert [r["info"]["run_name"] for r in json.loads(listed)] == ["r0"]


@pytest.mark.parametrize(("args", "message"), [
    ((), "no retention policy: set how old a run may get, e.g. `cairn config "
         "retention.runs.max_age 90d`"),
    (("-r", "origin"), "-r/--remote names remotes to clean, which --cloud does; add --cloud"),
    (("--cloud", "-r", "nowhere"), "unknown remote 'nowhere'"),
])
def test_what_retention_refuses_in_one_line(repo: CliRepo, args: tuple[str, ...],
                                            message: str) -> None:
    if args:
        repo.cairn("config", "retention.runs.max_age", "90d")
    result = repo.cairn("retention", "apply", *args, ok=False)
    assert result.exit_code != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_malformed_policy_is_named(repo: CliRepo) -> None:
    (repo.root / ".cairn" / "config.toml").write_text(
        'format = 1\n[retention.runs]\nmax_age = "90 days"\n')
    result = repo.cairn("retention", "apply", "--dry-run", ok=False)
    assert result.exit_code != 0
    assert 'retention.runs.max_age takes a duration such as "90d"' in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("removed_before_kill", [1, 600])
def test_sigkill_mid_apply_then_a_rerun_finishes_and_keeps_what_is_live(
        policy: CliRepo, removed_before_kill: int) -> None:
    repo = policy
    make_runs(repo, 12, 100)
    kept = json.loads(repo.cairn("runs", "list", "--json").output)
    keeper = next(r["info"]["run_id"] for r in kept if r["info"]["run_name"] == "r0")
    plan = json.loads(repo.cairn("retention", "apply", "--dry-run", "--json").output)
    doomed = set(plan["objects"]["cache"])
    before = cache_count(repo)
    assert len(doomed) == 11 * 101  # each expired run's files and its directory manifest

    proc = subprocess.Popen([sys.executable, "-m", "cairn", "retention", "apply"],
                            cwd=repo.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if cache_count(repo) <= before - removed_before_kill:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    every_object_is_whole(repo)
    again = json.loads(repo.cairn("retention", "apply", "--json").output)
    assert set(again["objects"]["cache"]) <= doomed
    assert cache_count(repo) == before - len(doomed)
    every_object_is_whole(repo)
    assert "all good" in repo.cairn("fsck").output
    listed = json.loads(repo.cairn("runs", "list", "--json").output)
    assert [r["info"]["run_id"] for r in listed] == [keeper]  # and its objects are all here
