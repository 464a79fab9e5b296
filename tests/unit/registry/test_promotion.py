"""Every promotion path goes through the gates, on every store: refusals carry every
verdict and are audited, passes record theirs, `--force` is MANAGE's and audited,
protected aliases hold, and requests move versions only when approved."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

import cairn
import cairn.gates
from cairn.commands import models
from cairn.errors import ApprovalPending, ConflictError, GateRefused, PermissionDenied, UserError

OWNER, BOB, CAROL = "alice", "bob", "carol"

METRIC_POLICY = """\
Production:
  - metric: f1
    min_improvement: 0.005
  - metric: accuracy
    min: 0.9
"""


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch) -> Any:
    def switch(user: str) -> None:
        monkeypatch.setenv("CAIRN_USER", user)

    switch(OWNER)
    return switch


def version_with(metrics: dict[str, float], name: str = "fraud", tags: dict[str, str] | None = None,
                 model_dir: Path | None = None) -> int:
    """A registered version whose run logged `metrics` (and a plain model directory)."""
    with cairn.start_run() as run:
        cairn.log_metrics(metrics)
        cairn.log_param("lr", 0.1)
        for key, value in (tags or {}).items():
            cairn.set_tag(key, value)
        here = model_dir or Path(f"model-{run.info.run_id}")
        here.mkdir(exist_ok=True)
        (here / "weights.bin").write_text(run.info.run_id)
        cairn.log_artifacts(str(here), "model")
    return cairn.register_model(f"runs:/{run.info.run_id}/model", name).version


def set_policy(text: str, name: str = "fraud") -> None:
    cairn.Client().set_gate_policy(name, text)


def test_a_refusal_names_every_verdict_and_is_audited(tracking: str, as_user: Any) -> None:
    client = cairn.Client()
    version_with({"f1": 0.90, "accuracy": 0.95})
    client.transition_model_version_stage("fraud", 1, "Production")  # no policy yet
    set_policy(METRIC_POLICY)
    worse = version_with({"f1": 0.902, "accuracy": 0.85})
    with pytest.raises(GateRefused) as refused:
        client.transition_model_version_stage("fraud", worse, "Production")
    assert [(v.rule, v.passed) for v in refused.value.verdicts] == [
        ("f1 min_improvement", False), ("accuracy min", False)]
    assert "2 of 2 checks failed" in str(refused.value)
    assert client.get_model_version("fraud", worse).current_stage == "None"
    last = client.get_audit_log("fraud", worse)[-1]
    assert (last.action, last.to_value, last.user_id) == ("gate_refused", "Production", OWNER)
    assert [v["rule"] for v in last.details["verdicts"]] == ["f1 min_improvement",  # type: ignore[index]
                                                             "accuracy min"]


def test_a_pass_records_its_verdicts_in_the_transition(tracking: str, as_user: Any) -> None:
    client = cairn.Client()
    version_with({"f1": 0.90, "accuracy": 0.95})
    client.transition_model_version_stage("fraud", 1, "Production")
    set_policy(METRIC_POLICY)
    better = version_with({"f1": 0.91, "accuracy": 0.95})
    moved = client.transition_model_version_stage("fraud", better, "Production",
                                                  archive_existing_versions=True)
    assert moved.current_stage == "Production"
    entry = [e for e in client.get_audit_log("fraud", better) if e.action == "transition"][-1]
    gates = entry.details["gates"]
    assert gates["policy_version"] == 1  # type: ignore[index]
    assert [(v["rule"], v["expected"], v["passed"]) for v in gates["verdicts"]] == [  # type: ignore[index]
        ("f1 min_improvement", "> v1 0.9 + 0.005", True), ("accuracy min", ">= 0.9", True)]


def test_no_path_of_the_library_skips_the_gates(tracking: str, as_user: Any) -> None:
    set_policy_later = """\
Staging:
  - metric: accuracy
    min: 0.99
aliases:
  champion:
    rules:
      - metric: accuracy
        min: 0.99
"""
    weak = version_with({"accuracy": 0.5})
    set_policy(set_policy_later)
    client = cairn.Client()
    attempts = [
        lambda: client.transition_model_version_stage("fraud", weak, "staging"),
        lambda: models.promote(name="fraud", version=weak, stage="Staging"),
        lambda: client.set_registered_model_alias("fraud", "champion", weak),
        lambda: models.set_alias(name="fraud", alias="champion", version=weak),
        lambda: cairn.MlflowClient().transition_model_version_stage("fraud", str(weak),
                                                                    "Staging"),
    ]
    for attempt in attempts:
        with pytest.raises(GateRefused):
            attempt()
    mv = client.get_model_version("fraud", weak)
    assert (mv.current_stage, mv.aliases) == ("None", ())
    client.set_registered_model_alias("fraud", "candidate", weak)  # an alias with no rules
    assert client.get_model_version_by_alias("fraud", "candidate").version == weak


def test_force_is_for_manage_holders_and_is_recorded(tracking: str, as_user: Any) -> None:
    client = cairn.Client()
    weak = version_with({"accuracy": 0.5})
    set_policy("Production:\n  - metric: accuracy\n    min: 0.9\n")
    as_user(BOB)  # EDIT, as everyone but the creator
    with pytest.raises(PermissionDenied, match="bob holds EDIT on model 'fraud'; --force"):
        client.transition_model_version_stage("fraud", weak, "Production", force=True)
    as_user(OWNER)
    client.transition_model_version_stage("fraud", weak, "Production", force=True)
    entry = client.get_audit_log("fraud", weak)[-1]
    assert (entry.action, entry.to_value, entry.details["forced"]) == (
        "transition", "Production", True)
    assert entry.details["failing"][0]["rule"] == "accuracy min"  # type: ignore[index]


def test_requests_open_then_an_approval_moves_the_version(tracking: str, as_user: Any) -> None:
    client = cairn.Client()
    set_policy_text = METRIC_POLICY + "  - approval: required\n"
    version_with({"f1": 0.9, "accuracy": 0.95})
    set_policy(set_policy_text)
    with pytest.raises(ApprovalPending, match="request 1 is open") as pending:
        client.transition_model_version_stage("fraud", 1, "Production")
    req = pending.value.request
    assert (req.state, req.requested_by, req.target) == ("open", OWNER, "Production")
    assert client.get_model_version("fraud", 1).current_stage == "None"
    with pytest.raises(PermissionDenied, match="alice opened request 1 and cannot approve"):
        client.approve_promotion_request(req.id)
    as_user(BOB)
    with pytest.raises(PermissionDenied, match="approving request 1 needs MANAGE"):
        client.approve_promotion_request(req.id)
    as_user(OWNER)
    client.set_permission("fraud", BOB, "MANAGE")
    as_user(BOB)
    decided = client.approve_promotion_request(req.id, comment="looks good")
    assert decided.request.state == "approved" and decided.request.decided_by == BOB
    assert client.get_model_version("fraud", 1).current_stage == "Production"
    moved = [e for e in client.get_audit_log("fraud", 1) if e.action == "transition"][-1]
    assert moved.details["approved_by"] == [BOB] and moved.details["request_id"] == 1
    with pytest.raises(ConflictError, match="request 1 is already approved by bob"):
        client.approve_promotion_request(req.id)


def test_reject_needs_a_comment_and_closes_the_request(tracking: str, as_user: Any) -> None:
    client = cairn.Client()
    version_with({"accuracy": 0.95})
    req = client.request_model_version_stage("fraud", 1, "Staging", reason="try it")
    with pytest.raises(UserError, match="needs a comment"):
        client.reject_promotion_request(req.id, "  ")
    decided = client.reject_promotion_request(req.id, "not this week")
    assert (decided.request.state, decided.request.decision_comment) == ("rejected",
                                                                         "not this week")
    assert [r.id for r in client.search_promotion_requests("fraud", state="open")] == []
    assert [e.action for e in client.get_audit_log("fraud", 1)][-2:] == [
        "request_opened", "request_rejected"]


def test_an_approval_evaluates_the_gates_as_they_are_now(tracking: str, as_user: Any) -> None:
    client = cairn.Client()
    version_with({"accuracy": 0.91})
    req = client.request_model_version_stage("fraud", 1, "Production")
    set_policy("Production:\n  - metric: accuracy\n    min: 0.95\n")  # stricter since
    client.set_permission("fraud", BOB, "MANAGE")
    as_user(BOB)
    with pytest.raises(GateRefused, match="accuracy min"):
        client.approve_promotion_request(req.id)
    assert client.get_promotion_request(req.id).state == "open"
    assert client.get_model_version("fraud", 1).current_stage == "None"


def test_a_request_whose_version_moved_cannot_be_approved(tracking: str, as_user: Any) -> None:
    client = cairn.Client()
    version_with({"accuracy": 0.91})
    req = client.request_model_version_stage("fraud", 1, "Production")
    client.transition_model_version_stage("fraud", 1, "Staging")
    client.set_permission("fraud", BOB, "MANAGE")
    as_user(BOB)
    with pytest.raises(ConflictError, match="moved from None to Staging since it was opened"):
        client.approve_promotion_request(req.id)


def test_two_approvers_when_the_policy_asks_for_two(tracking: str, as_user: Any) -> None:
    client = cairn.Client()
    version_with({"accuracy": 0.91})
    set_policy("Production:\n  - approval: required\n    approvers: 2\n")
    client.set_permission("fraud", BOB, "MANAGE")
    client.set_permission("fraud", CAROL, "MANAGE")
    req = models.promote(name="fraud", version=1, stage="Production").request
    assert req is not None
    as_user(BOB)
    first = client.approve_promotion_request(req.id)
    assert (first.request.state, first.applied) == ("open", None)
    with pytest.raises(ConflictError, match="bob has already approved request"):
        client.approve_promotion_request(req.id)
    as_user(CAROL)
    second = client.approve_promotion_request(req.id)
    assert second.request.state == "approved"
    assert [a.user_id for a in second.request.approvals] == [BOB, CAROL]
    assert client.get_model_version("fraud", 1).current_stage == "Production"


def test_protected_aliases_move_for_manage_and_keep_their_version(tracking: str,
                                                                  as_user: Any) -> None:
    client = cairn.Client()
    version_with({"accuracy": 0.91})
    version_with({"accuracy": 0.92})
    set_policy("aliases:\n  champion:\n    protected: true\n")
    client.set_registered_model_alias("fraud", "champion", 1)
    as_user(BOB)
    with pytest.raises(PermissionDenied, match="alias 'champion' of model 'fraud' is protected"):
        client.set_registered_model_alias("fraud", "champion", 2)
    with pytest.raises(PermissionDenied, match="deleting alias 'champion' needs MANAGE"):
        client.delete_registered_model_alias("fraud", "champion")
    req = models.set_alias(name="fraud", alias="champion", version=2, request=True).request
    assert req is not None and req.target == "@champion"
    as_user(OWNER)
    with pytest.raises(ConflictError, match="holds the protected alias 'champion'"):
        client.delete_model_version("fraud", 1)
    with pytest.raises(ConflictError, match="cannot archive .* version 1"):
        client.transition_model_version_stage("fraud", 1, "Archived")
    client.transition_model_version_stage("fraud", 1, "Production")
    with pytest.raises(ConflictError, match="cannot archive"):
        client.transition_model_version_stage("fraud", 2, "Production",
                                              archive_existing_versions=True)
    with pytest.raises(ConflictError, match="cannot delete model 'fraud'"):
        client.delete_registered_model("fraud")
    decided = client.approve_promotion_request(req.id)
    assert decided.request.state == "approved"
    assert client.get_model_version_by_alias("fraud", "champion").version == 2
    client.delete_model_version("fraud", 1)  # no longer the champion


def test_the_creator_manages_and_grants(tracking: str, as_user: Any) -> None:
    client = cairn.Client()
    version_with({"accuracy": 0.91})
    assert client.get_permissions("fraud") == {OWNER: "MANAGE"}
    as_user(BOB)
    with pytest.raises(PermissionDenied, match="setting gates needs MANAGE"):
        set_policy("Staging:\n  - require: signature\n")
    with pytest.raises(PermissionDenied, match="changing permissions needs MANAGE"):
        client.set_permission("fraud", BOB, "MANAGE")
    with pytest.raises(PermissionDenied, match="deleting a version needs MANAGE"):
        client.delete_model_version("fraud", 1)
    as_user(OWNER)
    client.set_permission("fraud", "*", "READ")
    as_user(BOB)
    with pytest.raises(PermissionDenied, match="registering a version needs EDIT"):
        version_with({"accuracy": 0.91})
    with pytest.raises(PermissionDenied, match="promoting needs EDIT"):
        client.transition_model_version_stage("fraud", 1, "Staging")
    assert models.permissions(name="fraud").your_level == "READ"


def test_policies_are_versioned_and_kept(tracking: str, as_user: Any) -> None:
    client = cairn.Client()
    version_with({"accuracy": 0.91})
    set_policy("Staging:\n  - require: signature\n")
    set_policy(METRIC_POLICY)
    current = client.get_gate_policy("fraud")
    first = client.get_gate_policy("fraud", 1)
    assert current is not None and first is not None
    assert (current.policy_version, current.source, first.source) == (
        2, METRIC_POLICY, "Staging:\n  - require: signature\n")
    assert [(e.action, e.to_value) for e in client.get_audit_log("fraud")
            if e.action == "set_gates"] == [("set_gates", "1"), ("set_gates", "2")]


def test_should_promote_is_the_seed_function_in_one_call(tracking: str, as_user: Any) -> None:
    version_with({"f1": 0.90})
    set_policy("Production:\n  - metric: f1\n    min_improvement: 0.005\n")
    with cairn.start_run() as run:  # not registered yet: metrics decide
        cairn.log_metric("f1", 0.99)
    assert cairn.gates.should_promote(run.info.run_id, "fraud")  # no Production yet
    cairn.Client().transition_model_version_stage("fraud", 1, "Production")
    assert cairn.gates.should_promote(run.info.run_id, "fraud")
    with cairn.start_run() as close:
        cairn.log_metric("f1", 0.904)
    verdict = cairn.gates.should_promote(close.info.run_id, "fraud", stage="production")
    assert not verdict and verdict.reasons == [
        "f1 min_improvement: expected > v1 0.9 + 0.005, actual 0.904 (FAIL)"]
    assert cairn.Client().get_model_version("fraud", 1).current_stage == "Production"
    assert cairn.gates.check("fraud", 1, "Staging")  # no rules for Staging


def test_requirements_answer_from_the_lineage(tracking: str, as_user: Any) -> None:
    version_with({"accuracy": 0.9}, tags={"cairn.git.commit": "a" * 40,
                                          "cairn.git.dirty": "true"})
    set_policy("Staging:\n  - require: [git_clean, lineage_complete, reproducible, "
               "signature, data_pushed]\n")
    result = cairn.Client().check_gates("fraud", 1, "Staging")
    actual = {v.rule: (v.passed, v.actual) for v in result.verdicts}
    assert actual["require git_clean"] == (False, "aaaaaaaaaaaa with uncommitted changes")
    assert actual["require lineage_complete"] == (False, "missing: data digests")
    assert actual["require reproducible"][0] is False
    assert "never reproduced" in actual["require reproducible"][1]
    assert actual["require signature"][0] is False
    assert actual["require data_pushed"] == (
        False, "no default remote configured (`cairn remote add -d NAME URL`)")
    store = cairn.Client().store
    store.add_audit_entry("fraud", 1, "reproduce", OWNER, "digest matches", {}, "match")
    result = cairn.Client().check_gates("fraud", 1, "Staging")
    assert {v.rule: v.passed for v in result.verdicts}["require reproducible"]


@pytest.mark.slow
def test_smoke_test_loads_and_predicts_in_a_fresh_process(tracking: str, as_user: Any,
                                                          fitted: tuple[Any, Any]) -> None:
    model, features = fitted
    with cairn.start_run() as run:
        cairn.sklearn.log_model(model, "model", input_example=features[:5])
    cairn.register_model(f"runs:/{run.info.run_id}/model", "iris")
    set_policy("Production:\n  - require: [signature, smoke_test]\n    timeout: 120\n", "iris")
    result = cairn.Client().check_gates("iris", 1, "Production")
    assert result, result.reasons
    assert result.verdicts[1].actual.startswith("5 prediction(s) in ")
    assert result.verdicts[0].actual == "4 input column(s)"


def race_approval(uri: str, request_id: int, user: str, start_at: float) -> str:
    import os

    os.environ["CAIRN_USER"] = user
    cairn.set_tracking_uri(uri)
    while time.time() < start_at:
        time.sleep(0.005)
    try:
        return cairn.Client().approve_promotion_request(request_id).request.state
    except ConflictError as e:
        return f"conflict: {e}"


@pytest.mark.slow
def test_two_approvals_racing_make_one_transition(tracking: str, as_user: Any) -> None:
    client = cairn.Client()
    version_with({"accuracy": 0.91})
    version_with({"accuracy": 0.92})
    client.transition_model_version_stage("fraud", 1, "Production")
    for user in (BOB, CAROL):
        client.set_permission("fraud", user, "MANAGE")
    req = client.request_model_version_stage("fraud", 2, "Production",
                                             archive_existing_versions=True)
    start_at = time.time() + 2.0
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        answers = pool.starmap(race_approval, [(tracking, req.id, BOB, start_at),
                                               (tracking, req.id, CAROL, start_at)])
    assert sorted(a.split(":")[0] for a in answers) == ["approved", "conflict"]
    moves = [e for e in client.get_audit_log("fraud") if e.action == "transition"]
    assert [(e.version, e.to_value) for e in moves][-2:] == [(1, "Archived"), (2, "Production")]
    assert len([e for e in moves if e.version == 2]) == 1


@pytest.mark.slow
def test_a_webhook_gate_blocks_passes_and_fails_closed(tracking: str, as_user: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.webhook_receiver import running

    client = cairn.Client()
    version_with({"f1": 0.93})
    monkeypatch.setenv("EVAL_SECRET", "s3cret")
    with running() as receiver:
        set_policy(f"Production:\n  - webhook: {receiver.url}/check\n    timeout: 0.5\n"
                   "    secret_env: EVAL_SECRET\n")
        receiver.status = 403
        with pytest.raises(GateRefused) as refused:
            client.transition_model_version_stage("fraud", 1, "Production")
        (verdict,) = refused.value.verdicts
        assert verdict.rule == f"webhook {receiver.url}/check" and "403" in verdict.actual
        call = receiver.requests[-1]
        assert call.signed_with("s3cret")
        summary = call.json()
        assert (summary["model"], summary["version"], summary["metrics"]) == (
            "fraud", 1, {"f1": 0.93})
        receiver.delay_s = 1.5  # longer than the rule's timeout
        with pytest.raises(GateRefused, match="no answer within 0.5 s"):
            client.transition_model_version_stage("fraud", 1, "Production")
        receiver.delay_s, receiver.status = 0, 200
        assert client.transition_model_version_stage("fraud", 1, "Production").current_stage \
            == "Production"
