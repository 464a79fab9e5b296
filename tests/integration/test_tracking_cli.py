"""`cairn runs` and `cairn experiments` in a real project (its .cairn/cairn.db)."""

from __future__ import annotations

import json

import pytest

import cairn
from tests.conftest import CliRepo

pytestmark = pytest.mark.usefixtures("fresh_tracking")


def two_runs(repo: CliRepo) -> tuple[str, str]:
    repo.write("params.yaml", "lr: 0.1\n")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "params")
    cairn.set_experiment("fraud")
    ids = []
    for lr, f1 in ((0.1, 0.90), (0.01, 0.95)):
        with cairn.start_run(run_name=f"lr-{lr}") as run:
            cairn.log_params({"lr": lr, "epochs": 5})
            cairn.log_metrics({"f1": f1})
        ids.append(run.info.run_id)
    return ids[0], ids[1]


def runs_json(repo: CliRepo, *args: str) -> list[dict[str, object]]:
    result: list[dict[str, object]] = json.loads(repo.cairn("runs", "list", "--json",
                                                            *args).output)
    return result


def run_id_of(run: dict[str, object]) -> str:
    info = run["info"]
    assert isinstance(info, dict)
    return str(info["run_id"])


def test_runs_are_listed_filtered_and_ordered(repo: CliRepo) -> None:
    slow, fast = two_runs(repo)
    assert {run_id_of(r) for r in runs_json(repo)} == {slow, fast}
    assert [run_id_of(r) for r in runs_json(repo, "--filter", "metrics.f1 > 0.92")] == [fast]
    best = runs_json(repo, "--experiment", "fraud", "--order-by", "metrics.f1 ASC", "--max", "1")
    assert [run_id_of(r) for r in best] == [slow]
    table = repo.cairn("runs", "list").output
    assert slow in table and fast in table and "FINISHED" in table
    assert repo.git("status", "--porcelain") == ""  # the database is local state, ignored


def test_show_has_params_metrics_and_lineage(repo: CliRepo) -> None:
    slow, _ = two_runs(repo)
    shown = json.loads(repo.cairn("runs", "show", slow, "--json").output)
    assert shown["params"] == {"lr": "0.1", "epochs": "5"}
    assert shown["metrics"] == {"f1": 0.9}
    assert shown["lineage"]["git.commit"] == repo.git("rev-parse", "HEAD").strip()
    assert shown["lineage"]["params"] == {"lr": 0.1}
    assert "lr-0.1" in repo.cairn("runs", "show", slow).output


def test_compare_puts_runs_side_by_side(repo: CliRepo) -> None:
    slow, fast = two_runs(repo)
    table = json.loads(repo.cairn("runs", "compare", slow, fast, "--json").output)
    assert table["metrics"]["f1"] == [0.9, 0.95]
    assert table["params"]["epochs"] == ["5", "5"]
    out = repo.cairn("runs", "compare", slow, fast).output
    assert "* param lr" in out and "  param epochs" in out


def test_delete_and_restore(repo: CliRepo) -> None:
    slow, fast = two_runs(repo)
    assert f"Deleted run {slow}" in repo.cairn("runs", "delete", slow).output
    assert [run_id_of(r) for r in runs_json(repo)] == [fast]
    assert [run_id_of(r) for r in runs_json(repo, "--deleted")] == [slow]
    repo.cairn("runs", "restore", slow)
    assert len(runs_json(repo)) == 2


def test_experiments(repo: CliRepo) -> None:
    assert "Created experiment 'churn'" in repo.cairn("experiments", "create", "churn").output
    names = [e["name"] for e in json.loads(repo.cairn("experiments", "list", "--json").output)]
    assert "churn" in names and "Default" in names
    again = repo.cairn("experiments", "create", "churn", ok=False)
    assert again.exit_code != 0 and "already exists" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_bad_input_is_one_line(repo: CliRepo) -> None:
    two_runs(repo)
    missing = repo.cairn("runs", "show", "0" * 32, ok=False)
    assert missing.exit_code == 1 and len(missing.stderr.strip().splitlines()) == 1
    bad = repo.cairn("runs", "list", "--filter", "metrics.f1 >> 1", ok=False)
    assert bad.exit_code == 2 and "error:" in bad.stderr
    unknown = repo.cairn("runs", "list", "--experiment", "nope", ok=False)
    assert "no experiment named 'nope'; experiments:" in unknown.stderr


def test_a_script_run_under_the_repository_lock_can_log_artifacts(repo: CliRepo) -> None:
    """`cairn repro` holds the lock while train.py runs; train.py must not wait for it."""
    import subprocess
    import sys

    from cairn.project.context import ProjectContext

    repo.write("report.txt", "ok")
    script = repo.write("log.py", "import cairn\nwith cairn.start_run() as r:\n"
                                  "    cairn.log_artifact('report.txt')\nprint(r.info.run_id)\n")
    with ProjectContext.find(repo.root).lock():
        with cairn.start_run() as run:  # this process holds it
            cairn.log_artifact(repo.root / "report.txt")
        child = subprocess.run([sys.executable, str(script)], cwd=repo.root, timeout=60,
                               capture_output=True, text=True, check=True)
    client = cairn.Client()
    for run_id in (run.info.run_id, child.stdout.split()[0]):
        assert [a.path for a in client.list_artifacts(run_id)] == ["report.txt"]


def test_json_output_stays_json_with_a_nan_metric(repo: CliRepo) -> None:
    """MLflow lets a run log NaN (a diverged loss); `--json` must still parse (jq, CI)."""
    with cairn.start_run() as run:
        cairn.log_metrics({"loss": float("nan"), "gain": float("inf"), "f1": 0.5})

    def strict(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    for args in (("runs", "list"), ("runs", "show", run.info.run_id)):
        data = json.loads(repo.cairn(*args, "--json").output, parse_constant=strict)
        assert "f1" in json.dumps(data)
