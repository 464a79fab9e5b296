"""Gates, requests and permissions by CLI: what a CI job and a reviewer type, what they
see (the verdict table, its Markdown), and the exit codes a pipeline acts on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cairn
from tests.conftest import CliRepo

POLICY = """\
Production:
  - metric: f1
    min_improvement: 0.005
  - require: [signature, lineage_complete]
  - approval: required
"""


@pytest.fixture(autouse=True)
def as_alice(monkeypatch: pytest.MonkeyPatch, fresh_tracking: None) -> None:
    monkeypatch.setenv("CAIRN_USER", "alice")


def register(repo: CliRepo, f1: float) -> None:
    with cairn.start_run() as run:
        cairn.log_params({"lr": 0.01})
        cairn.log_metrics({"f1": f1})
        here = repo.root / f"out-{run.info.run_id}"
        here.mkdir()
        (here / "weights.bin").write_text(str(f1))
        cairn.log_artifacts(str(here), "model")
    repo.cairn("models", "register", f"runs:/{run.info.run_id}/model", "-n", "fraud")


def test_a_ci_job_is_refused_with_the_table_then_a_request_is_approved(
        repo: CliRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    register(repo, 0.90)
    repo.cairn("models", "promote", "fraud", "1", "--to", "Production")
    repo.write("gates.yaml", POLICY)
    out = repo.cairn("models", "gates", "set", "fraud", "gates.yaml").output
    assert "Gate policy v1 set on 'fraud' (Production: 3 rule(s))." in out
    assert repo.cairn("models", "gates", "show", "fraud").output.endswith(POLICY)

    register(repo, 0.902)  # v2: not enough better, and no data digests or signature
    refused = repo.cairn("models", "promote", "fraud", "2", "--to", "production", ok=False)
    assert refused.exit_code == 1
    assert "Refused by the gates" in refused.stdout
    for rule in ("f1 min_improvement", "require signature", "require lineage_complete"):
        assert rule in refused.stdout
    assert "> v1 0.9 + 0.005" in refused.stdout and "FAIL" in refused.stdout
    assert refused.stderr.count("\n") == 1 and "gates refused model 'fraud' version 2" \
        in refused.stderr

    md = repo.cairn("models", "gates", "check", "fraud", "2", "--to", "Production",
                    "--report", "md", ok=False)
    assert md.exit_code == 1
    assert md.stdout.startswith("### Gates for 'fraud' v2 → Production: refused\n\n"
                                "| rule | expected | actual | result |\n|---|---|---|---|\n")
    assert "| f1 min_improvement | > v1 0.9 + 0.005 | 0.902 | **FAIL** |" in md.stdout

    repo.write("gates.yaml", "Production:\n  - metric: f1\n    min_improvement: 0.005\n"
               "  - approval: required\n")
    repo.cairn("models", "gates", "set", "fraud", "gates.yaml")
    register(repo, 0.95)  # v3
    opened = repo.cairn("models", "promote", "fraud", "3", "--to", "Production",
                        "--archive-existing").output
    assert "Opened request 1: 'fraud' v3 → Production, its policy wants 1 approval(s)" in opened
    listed = json.loads(repo.cairn("models", "requests", "fraud", "--state", "open",
                                   "--json").output)
    assert [(r["id"], r["version"], r["requested_by"]) for r in listed] == [(1, 3, "alice")]
    self_approval = repo.cairn("models", "approve", "1", ok=False)
    assert self_approval.exit_code == 1 and "cannot approve it" in self_approval.stderr

    repo.cairn("models", "permissions", "fraud", "bob", "MANAGE")
    monkeypatch.setenv("CAIRN_USER", "bob")
    approved = repo.cairn("models", "approve", "1", "--comment", "ship it").output
    assert "Approved request 1: 'fraud' v3 → Production (approved by bob)." in approved
    versions = json.loads(repo.cairn("models", "versions", "fraud", "--json").output)
    assert [(v["version"], v["current_stage"]) for v in versions] == [
        (3, "Production"), (2, "None"), (1, "Archived")]
    lineage = repo.cairn("models", "lineage", "models:/fraud/3").output
    assert "gates 2/2 pass" in lineage


def test_force_and_reject_and_permissions(repo: CliRepo, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    register(repo, 0.5)
    repo.write("gates.yaml", "Staging:\n  - metric: f1\n    min: 0.9\n")
    repo.cairn("models", "gates", "set", "fraud", "gates.yaml")
    monkeypatch.setenv("CAIRN_USER", "bob")
    denied = repo.cairn("models", "promote", "fraud", "1", "--to", "Staging", "--force",
                        ok=False)
    assert denied.exit_code == 1 and "bob holds EDIT on model 'fraud'" in denied.stderr
    out = repo.cairn("models", "promote", "fraud", "1", "--to", "Staging", "--request",
                     ok=False)
    assert out.exit_code == 1  # a request must pass the gates too
    monkeypatch.setenv("CAIRN_USER", "alice")
    forced = repo.cairn("models", "promote", "fraud", "1", "--to", "Staging", "--force").output
    assert "None → Staging (forced: gates skipped)." in forced
    history = json.loads(repo.cairn("models", "history", "fraud", "--json").output)
    last = history[-1]
    assert (last["action"], last["details"]["forced"]) == ("transition", True)
    assert "FORCED past f1 min" in repo.cairn("models", "lineage", "models:/fraud/1").output

    req = json.loads(repo.cairn("models", "promote", "fraud", "1", "--to", "Production",
                                "--request", "--json").output)["request"]
    lineage = repo.cairn("models", "lineage", "models:/fraud/1").output
    assert f"request {req['id']}" in lineage and "open: v1 → Production, asked by alice" \
        in lineage
    assert repo.cairn("models", "reject", str(req["id"]), ok=False).exit_code == 2
    out = repo.cairn("models", "reject", str(req["id"]), "--comment", "not yet").output
    assert f"Rejected request {req['id']}" in out
    shown = repo.cairn("models", "permissions", "fraud").output
    assert "alice" in shown and "MANAGE" in shown and "You (alice) hold MANAGE." in shown


@pytest.mark.parametrize(("policy", "message"), [
    ("Production:\n  - metric: f1\n    minimum: 0.9\n",
     "gates.yaml:3: unknown option 'minimum' for a metric rule"),
    ("Prod:\n  - require: signature\n", "gates.yaml:1: unknown stage 'Prod'"),
    ("Production:\n  - metric: [f1\n", "gates.yaml:3: "),
])
def test_a_bad_policy_file_is_one_line_naming_its_line(repo: CliRepo, policy: str,
                                                       message: str) -> None:
    register(repo, 0.5)
    repo.write("gates.yaml", policy)
    bad = repo.cairn("models", "gates", "set", "fraud", "gates.yaml", ok=False)
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: " + message) or message in bad.stderr
    assert bad.stderr.strip().count("\n") == 0
    assert "has no gate policy" in repo.cairn("models", "gates", "show", "fraud").output


def test_check_passes_with_exit_zero(repo: CliRepo) -> None:
    register(repo, 0.95)
    repo.write("gates.yaml", "Production:\n  - metric: f1\n    min: 0.9\n")
    repo.cairn("models", "gates", "set", "fraud", "gates.yaml")
    out = repo.cairn("models", "gates", "check", "fraud", "1", "--to", "production").output
    assert "f1 min" in out and "pass" in out
    result = json.loads(repo.cairn("models", "gates", "check", "fraud", "1", "--to",
                                   "Production", "--json").output)
    assert result["passed"] is True and result["verdicts"][0]["actual"] == "0.95"


def test_text_in_square_brackets_is_shown_not_taken_for_markup(repo: CliRepo) -> None:
    """A reason like "[JIRA-12] …" used to vanish: Rich read it as a style tag."""
    register(repo, 0.95)
    repo.cairn("models", "promote", "fraud", "1", "--to", "Staging", "--reason", "[b]ok[/b]")
    assert "[b]ok[/b]" in repo.cairn("models", "history", "fraud").output


def test_requirements_read_the_project_git_and_remote(repo: CliRepo, tmp_path: Path) -> None:
    repo.cairn("remote", "add", "-d", "store", str(tmp_path / "store"))
    repo.write("data/raw.csv", "a,b\n1,2\n")
    repo.cairn("add", "data/raw.csv")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "data")
    register(repo, 0.95)  # a clean commit, the data digest and params recorded
    repo.write("gates.yaml", "Staging:\n  - require: [git_clean, lineage_complete, "
               "data_pushed]\n")
    repo.cairn("models", "gates", "set", "fraud", "gates.yaml")
    before = json.loads(repo.cairn("models", "gates", "check", "fraud", "1", "--to",
                                   "Staging", "--json", ok=False).output)
    verdicts = {v["rule"]: v for v in before["verdicts"]}
    assert verdicts["require git_clean"]["passed"] and verdicts["require lineage_complete"][
        "passed"]
    pushed = verdicts["require data_pushed"]
    assert not pushed["passed"] and "data/raw.csv" in pushed["actual"] \
        and "the model" in pushed["actual"] and "(`cairn push`)" in pushed["actual"]
    repo.cairn("push")
    after = json.loads(repo.cairn("models", "gates", "check", "fraud", "1", "--to", "Staging",
                                  "--json").output)
    assert after["passed"] and after["verdicts"][2]["actual"].startswith("all ")
