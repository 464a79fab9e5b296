"""The one way a version enters a stage or takes an alias: permissions, gates, requests.

    promote / move_alias    who may (permissions) → what the policy says (gates) →
                            refuse, open a request, or apply — in that order, always
    approve / reject        a MANAGE holder other than the requester decides; approval
                            re-evaluates the gates and moves the version in the
                            transaction that records it
    should_promote          the gates' answer without promoting

Through a Cairn server (a `RestStore`), each operation is the server's: it runs this
same code there, as the authenticated user, so a client can neither skip nor fake a gate.

Gates are evaluated outside any transaction (a smoke test takes seconds); the change
then carries what they saw (`Expected`), and the store refuses it if the registry moved
meanwhile. `Client`, `cairn models …` and the server all come through here, so no path
skips a gate.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cairn.errors import ConflictError, GateRefused, PermissionDenied, UserError
from cairn.identity import current_user
from cairn.registry import gates, permissions, requirements, stages, uris
from cairn.registry.gates import GateResult, Policy, Verdict
from cairn.registry.lineage import run_or_none
from cairn.registry.requirements import Candidate
from cairn.store.base import MetadataStore
from cairn.store.entities import (
    AliasMove,
    AuditEntry,
    Decision,
    DecisionResult,
    Expected,
    GatePolicy,
    ModelVersion,
    PromotionRequest,
    StageChange,
    StageChangeResult,
)
from cairn.store.rest import model_path, seg
from cairn.tracking.backend import Backend
from cairn.tracking.server_objects import server_of


@dataclass(frozen=True)
class Promotion:
    """What a promotion did: moved the version, moved the alias, or opened a request."""

    name: str
    version: int
    target: str  # "Production", or "@champion"
    gates: GateResult
    forced: bool = False
    moved: StageChangeResult | None = None
    alias: AuditEntry | None = None
    request: PromotionRequest | None = None


# -- evaluating --------------------------------------------------------------------------

def policy_of(store: MetadataStore, name: str) -> Policy:
    stored = store.get_gate_policy(name)
    return Policy() if stored is None else Policy.from_document(stored.document,
                                                                stored.policy_version)


def evaluate(b: Backend, name: str, candidate: Candidate | ModelVersion, target: str,
             policy: Policy | None = None) -> tuple[GateResult, Expected]:
    """Every rule's verdict for `candidate` (a version, or a run and the version made
    from it) entering `target`, and the state they saw."""
    policy = policy if policy is not None else policy_of(b.store, name)
    rules = policy.rules_for(target)
    version = candidate if isinstance(candidate, ModelVersion) else candidate.version
    number = version.version if version is not None else None
    if not rules:  # nothing to compare with: only a new policy would change the answer
        return GateResult(name, number, target, (), policy.version), \
            Expected(None, None, policy.version)
    if isinstance(candidate, ModelVersion):
        candidate = candidate_of(b.store, candidate)
    holders = _holders(b.store, name, target)
    expected = Expected(version.current_stage if version is not None else None,
                        holders, policy.version)
    held = [v for v in holders if version is None or v != version.version]
    current = (b.store.get_model_version(name, held[-1]) if held else None)
    current_metrics = _metrics(b.store, current) if current is not None else None
    holder = (f"v{current.version}" if current is not None
              else gates.target_name(target))
    verdicts: list[Verdict] = []
    approvals = 0
    for rule in rules:
        kind = rule["kind"]
        if kind == "metric":
            verdicts += gates.metric_verdicts(rule, candidate.metrics, current_metrics, holder)
        elif kind == "require":
            verdicts += [requirements.check(b, r, candidate, rule) for r in rule["require"]]
        elif kind == "approval":
            approvals = max(approvals, int(rule["approvers"]))
        elif kind == "webhook":
            verdicts.append(_webhook_verdict(rule, name, candidate, target, current))
    return GateResult(name, number, target, tuple(verdicts), policy.version, approvals), \
        expected


def _holders(store: MetadataStore, name: str, target: str) -> tuple[int, ...]:
    """The versions holding `target` now, ascending."""
    if target.startswith("@"):
        aliases = uris.get_model(store, name).aliases
        alias = target[1:]
        return (aliases[alias],) if alias in aliases else ()
    return store.get_stage_holders(name, target)


def _metrics(store: MetadataStore, mv: ModelVersion) -> dict[str, float]:
    run = run_or_none(store, mv.run_id)
    return dict(run.data.metrics) if run is not None else {}


def candidate_of(store: MetadataStore, mv: ModelVersion) -> Candidate:
    return Candidate(mv.name, mv, run_or_none(store, mv.run_id))


def _webhook_verdict(rule: dict[str, Any], name: str, candidate: Candidate, target: str,
                     current: ModelVersion | None) -> Verdict:
    from cairn.registry.webhooks import call_gate

    mv, run = candidate.version, candidate.run
    summary = {
        "model": name, "version": mv.version if mv else None, "target": target,
        "digest": mv.digest if mv else None, "run_id": run.info.run_id if run else None,
        "metrics": candidate.metrics, "params": dict(run.data.params) if run else {},
        "git_commit": candidate.tags.get("cairn.git.commit"),
        "current": None if current is None else {"version": current.version,
                                                 "digest": current.digest,
                                                 "run_id": current.run_id},
    }
    timeout = float(rule["timeout"])
    answer = call_gate(rule["webhook"], summary, timeout=timeout,
                       secret_env=rule.get("secret_env"))
    return Verdict(f"webhook {rule['webhook']}", f"2xx within {timeout:g} s", answer.detail,
                   answer.passed)


# -- promoting ---------------------------------------------------------------------------

def promote(b: Backend, name: str, version: int, stage: str, *, archive_existing: bool = False,
            reason: str = "", user: str | None = None, request: bool = False,
            force: bool = False) -> Promotion:
    """Move `version` of `name` to `stage` if its gates pass; open a request instead
    when asked (`request`) or when the policy wants approvers; with `force` (MANAGE
    only), move it whatever the gates say, recorded as forced."""
    server = server_of(b)
    if server is not None:
        return server.call(Promotion, "POST", f"{model_path(name)}/versions/{int(version)}/"
                           "promote", {"stage": stage, "archive_existing": archive_existing,
                                       "reason": reason, "request": request, "force": force,
                                       "user_id": user})
    user = user or current_user()
    change = stages.plan(name, version, stage, archive_existing=archive_existing,
                         user_id=user, reason=reason)
    _require(b.store, name, user, force)
    mv = uris.get_version(b.store, name, version)
    result, expected = evaluate(b, name, mv, change.stage)
    if not force:
        _refuse_if_failing(b, result, user, reason)
    if (request or result.approvals_required) and not force:
        opened = b.store.create_promotion_request(
            name, version, change.stage, archive_existing, user, reason,
            {"gates": result.details()})
        notify(b)
        return Promotion(name, version, change.stage, result, request=opened)
    planned = StageChange(name, version, change.stage, change.archive_others_to, user,
                          reason, change.archive_reason, _details(result, force),
                          expected)
    moved = b.store.apply_stage_change(planned)
    notify(b)
    return Promotion(name, version, change.stage, result, force, moved=moved)


def move_alias(b: Backend, name: str, alias: str, version: int, *, reason: str = "",
               user: str | None = None, request: bool = False,
               force: bool = False) -> Promotion:
    """Point `alias` at `version`: an alias the policy gives rules to is a promotion."""
    server = server_of(b)
    if server is not None:
        return server.call(Promotion, "PUT", f"{model_path(name)}/aliases/{seg(alias, 'alias')}",
                           {"version": int(version), "reason": reason, "request": request,
                            "force": force, "user_id": user})
    user = user or current_user()
    target = "@" + alias
    policy = policy_of(b.store, name)
    level = _require(b.store, name, user, force)
    if policy.is_protected(alias) and not permissions.allows(level, "MANAGE") and not request:
        raise PermissionDenied(f"alias '{alias}' of model '{name}' is protected: only a "
                               f"MANAGE holder moves it ({user} holds {level}); open a "
                               "request with --request")
    mv = uris.get_version(b.store, name, version)
    result, expected = evaluate(b, name, mv, target, policy)
    if not force:
        _refuse_if_failing(b, result, user, reason)
    if (request or result.approvals_required) and not force:
        opened = b.store.create_promotion_request(name, version, target, False, user, reason,
                                                  {"gates": result.details()})
        notify(b)
        return Promotion(name, version, target, result, request=opened)
    entry = b.store.apply_alias_move(AliasMove(name, alias, version, user, reason,
                                               _details(result, force), expected))
    notify(b)
    return Promotion(name, version, target, result, force, alias=entry)


def delete_alias(b: Backend, name: str, alias: str, *, user: str | None = None) -> AuditEntry:
    server = server_of(b)
    if server is not None:
        where = f"{model_path(name)}/aliases/{seg(alias, 'alias')}"
        return server.call(AuditEntry, "DELETE", where + (f"?user_id={quote(user)}" if user
                                                          else ""))
    user = user or current_user()
    needed = "MANAGE" if policy_of(b.store, name).is_protected(alias) else "EDIT"
    permissions.require(b.store, name, user, needed, f"deleting alias '{alias}'")
    entry = b.store.apply_alias_move(AliasMove(name, alias, None, user))
    notify(b)
    return entry


def notify(b: Backend) -> None:
    """Send the webhook deliveries a change queued, in the background (never blocks)."""
    from cairn.registry.webhooks import dispatch

    dispatch(b.store, b.uri)


def _require(store: MetadataStore, name: str, user: str, force: bool) -> str:
    if force:
        return permissions.require(store, name, user, "MANAGE", "--force (skipping the gates)")
    return permissions.require(store, name, user, "EDIT", "promoting")


def _refuse_if_failing(b: Backend, result: GateResult, user: str, reason: str) -> None:
    if result.passed:
        return
    failing = result.failing
    b.store.add_audit_entry(result.name, result.version, "gate_refused", user,
                          reason or "failed: " + ", ".join(v.rule for v in failing),
                            {"target": result.target, **result.details()},
                            to_value=result.target)
    notify(b)
    raise GateRefused(
        f"gates refused model '{result.name}' version {result.version} → "
        f"{gates.target_name(result.target)}: {len(failing)} of {len(result.verdicts)} "
        f"checks failed ({'; '.join(str(v) for v in failing[:3])})", result.verdicts)


def _details(result: GateResult, forced: bool) -> dict[str, object]:
    details: dict[str, object] = {"gates": result.details()} if result.verdicts else {}
    if forced:
        details["forced"] = True
        details["failing"] = [v.to_dict() for v in result.failing]
    return details


# -- requests ------------------------------------------------------------------------------

def requests(store: MetadataStore, name: str | None = None,
             state: str | None = None) -> list[PromotionRequest]:
    return store.search_promotion_requests(name, state)


def approve(b: Backend, request_id: int, *, comment: str = "",
            user: str | None = None) -> DecisionResult:
    """Approve an open request; once it has the approvers its policy wants, the gates are
    evaluated again and the version moves, in the transaction recording the approval."""
    server = server_of(b)
    if server is not None:
        return server.call(DecisionResult, "POST", f"/requests/{int(request_id)}/approve",
                           {"comment": comment, "user_id": user})
    user = user or current_user()
    req = _open_request(b.store, request_id)
    permissions.require(b.store, req.name, user, "MANAGE", f"approving request {req.id}")
    if user == req.requested_by:
        raise PermissionDenied(f"{user} opened request {req.id} and cannot approve it; "
                               "another MANAGE holder must")
    mv = uris.get_version(b.store, req.name, req.version)
    result, expected = evaluate(b, req.name, mv, req.target)
    _refuse_if_failing(b, result, user, f"request {req.id} cannot be approved: its gates "
                       "fail now")
    approvers = [a.user_id for a in req.approvals] + [user]
    required = max(result.approvals_required, 1)
    verdicts = (*result.verdicts, gates.approval_verdict(required, approvers))
    details = {"gates": {**result.details(), "verdicts": [v.to_dict() for v in verdicts]},
               "request_id": req.id, "approved_by": approvers}
    change: StageChange | AliasMove
    if req.alias is not None:
        change = AliasMove(req.name, req.alias, req.version, user, req.reason, details,
                           expected)
    else:
        plan = stages.plan(req.name, req.version, req.target,
                           archive_existing=req.archive_existing, user_id=user,
                           reason=req.reason)
        change = StageChange(req.name, req.version, plan.stage, plan.archive_others_to, user,
                             req.reason or f"request {req.id}", plan.archive_reason, details,
                             expected)
    decided = b.store.decide_promotion_request(
        Decision(req.id, user, True, comment, required, change, {"approved_by": approvers}))
    notify(b)
    return decided


def reject(b: Backend, request_id: int, *, comment: str,
           user: str | None = None) -> DecisionResult:
    server = server_of(b)
    if server is not None:
        return server.call(DecisionResult, "POST", f"/requests/{int(request_id)}/reject",
                           {"comment": comment, "user_id": user})
    user = user or current_user()
    if not comment.strip():
        raise UserError("rejecting a request needs a comment saying why (--comment)")
    req = _open_request(b.store, request_id)
    permissions.require(b.store, req.name, user, "MANAGE", f"rejecting request {req.id}")
    decided = b.store.decide_promotion_request(Decision(req.id, user, False, comment))
    notify(b)
    return decided


def _open_request(store: MetadataStore, request_id: int) -> PromotionRequest:
    req = store.get_promotion_request(request_id)
    if req.state != "open":
        by = f" by {req.decided_by}" if req.decided_by else ""
        raise ConflictError(f"request {req.id} is already {req.state}{by}")
    return req


# -- policies ------------------------------------------------------------------------------

def set_policy(store: MetadataStore, name: str, text: str, path: str,
               user: str | None = None) -> GatePolicy:
    """Validate the YAML `text` (read from `path`) and store it as the next policy."""
    user = user or current_user()
    policy = gates.parse(text, path)
    permissions.require(store, name, user, "MANAGE", "setting gates")
    return store.set_gate_policy(name, text, policy.document, user)


def should_promote(b: Backend, run_id: str, model_name: str,
                   stage: str = "Production") -> GateResult:
    """The gates' verdict on the run's model entering `stage`, without promoting."""
    server = server_of(b)
    if server is not None:
        return server.call(GateResult, "POST", f"{model_path(model_name)}/gates/should-promote",
                           {"run_id": run_id, "stage": stage})
    target = stages.canonical(stage)
    run = b.store.get_run(run_id)
    uris.get_model(b.store, model_name)
    where = f"name = '{uris.quote_string(model_name)}' AND run_id = '{uris.quote_string(run_id)}'"
    found = sorted((mv for mv in b.store.search_model_versions(where) if mv.name == model_name),
                   key=lambda mv: mv.version)
    candidate = Candidate(model_name, found[-1] if found else None, run)
    return evaluate(b, model_name, candidate, target)[0]


def check(b: Backend, name: str, version: int, target: str) -> GateResult:
    """The gates' verdict on `version` entering `target` (a stage, or "@alias")."""
    server = server_of(b)
    if server is not None:
        return server.call(GateResult, "POST", f"{model_path(name)}/gates/check",
                           {"version": int(version), "target": target})
    target = target if target.startswith("@") else stages.canonical(target)
    mv = uris.get_version(b.store, name, version)
    return evaluate(b, name, mv, target)[0]


# -- changes planned elsewhere ---------------------------------------------------------------
# A server's clients may send the store's planned changes themselves (RestStore's
# apply_stage_change and friends). They are applied only where no gate could have said
# otherwise, with the permissions a promotion needs, and as the acting user.

def apply_planned_stage_change(b: Backend, change: StageChange, user: str) -> StageChangeResult:
    _ungated(b.store, change.name, user, "promoting")
    moved = b.store.apply_stage_change(dataclasses.replace(change, user_id=user))
    notify(b)
    return moved


def apply_planned_alias_move(b: Backend, move: AliasMove, user: str) -> AuditEntry:
    _ungated(b.store, move.name, user, "moving an alias")
    entry = b.store.apply_alias_move(dataclasses.replace(move, user_id=user))
    notify(b)
    return entry


def apply_planned_decision(b: Backend, decision: Decision, user: str) -> DecisionResult:
    """A decision on a request, its change (if any) the one the request asked for."""
    req = b.store.get_promotion_request(decision.request_id)
    permissions.require(b.store, req.name, user, "MANAGE", f"deciding request {req.id}")
    _ungated(b.store, req.name, user, f"deciding request {req.id}")
    if decision.approve and user == req.requested_by:
        raise PermissionDenied(f"{user} opened request {req.id} and cannot approve it; "
                               "another MANAGE holder must")
    change = decision.change
    if change is not None:
        target = f"@{change.alias}" if isinstance(change, AliasMove) else change.stage
        if (change.name, change.version, target) != (req.name, req.version, req.target):
            raise ConflictError(f"the change approving request {req.id} must move version "
                                f"{req.version} of '{req.name}' to {req.target}")
        change = dataclasses.replace(change, user_id=user)
    decided = b.store.decide_promotion_request(
        dataclasses.replace(decision, user_id=user, change=change))
    notify(b)
    return decided


def apply_planned_request(b: Backend, name: str, version: int, target: str,
                          archive_existing: bool, user: str, reason: str,
                          details: dict[str, Any] | None) -> PromotionRequest:
    """A request opened as asked (EDIT): approving it evaluates the gates again, so the
    verdicts a client put in `details` decide nothing."""
    permissions.require(b.store, name, user, "EDIT", "requesting a promotion")
    opened = b.store.create_promotion_request(name, version, target, archive_existing, user,
                                              reason, details)
    notify(b)
    return opened


def _ungated(store: MetadataStore, name: str, user: str, doing: str) -> None:
    permissions.require(store, name, user, "EDIT", doing)
    policy = store.get_gate_policy(name)
    if policy is not None:
        raise ConflictError(
            f"model '{name}' has gate policy version {policy.policy_version}: its changes go "
            f"through the registry's operations (POST /api/v1/models/{name}/versions/N/"
            "promote, PUT …/aliases/A, POST /api/v1/requests/ID/approve), which evaluate "
            "the gates on the server")


def set_permission(store: MetadataStore, name: str, user: str, level: str | None,
                   granted_by: str) -> None:
    """Grant READ, EDIT or MANAGE on `name` to `user` ("*": everyone else); None
    revokes. `granted_by` needs MANAGE."""
    permissions.require(store, name, granted_by, "MANAGE", "changing permissions")
    store.set_permission(name, user, None if level is None else permissions.check_level(level),
                         granted_by)
