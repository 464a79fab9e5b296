"""What the registry's rules govern: promotions, aliases, gate policies, permissions,
promotion requests and their decisions, webhooks.

Two kinds of routes. The registry's own operations (`…/promote`, `PUT …/aliases/…`,
`…/approve`, `…/reject`, `…/gates/check`) run `cairn.registry.promotion` here, as the
acting user: permissions checked, gates evaluated on the server, requests opened — the
path every Cairn client takes. The store's planned changes (`…/stage-changes`,
`…/alias-moves`, `…/decisions`) are the `MetadataStore` operations themselves, for the
conformance of `RestStore`; they are refused on a model with a gate policy (its gates
are evaluated only by the operations above), and checked for permission like them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from cairn.registry import promotion, webhooks
from cairn.registry.gates import GateResult
from cairn.registry.promotion import Promotion
from cairn.server.api_v1.common import acting, answer, backend_of, done, store_of
from cairn.store.entities import (
    AliasMove,
    AuditEntry,
    Decision,
    DecisionResult,
    GatePolicy,
    PromotionRequest,
    StageChange,
    StageChangeResult,
    Webhook,
    WebhookDelivery,
)

router = APIRouter(tags=["governance"])


class PromoteBody(BaseModel):
    stage: str
    archive_existing: bool = False
    reason: str = ""
    request: bool = False  # open a promotion request instead of moving
    force: bool = False  # MANAGE only: move whatever the gates say (recorded as forced)
    user_id: str | None = None  # without --auth, who acts (default: the request's user)


class AliasBody(BaseModel):
    version: int
    reason: str = ""
    request: bool = False
    force: bool = False
    user_id: str | None = None


class Comment(BaseModel):
    comment: str = ""
    user_id: str | None = None


class GateCheck(BaseModel):
    version: int
    target: str  # a stage, or "@alias"


class ShouldPromote(BaseModel):
    run_id: str
    stage: str = "Production"


class PolicyBody(BaseModel):
    source: str  # the YAML as written; the server validates it
    path: str = "<api>"
    user_id: str = ""


class PermissionBody(BaseModel):
    user_id: str
    level: str | None = None  # READ, EDIT, MANAGE; null revokes
    granted_by: str = ""


class RequestCreate(BaseModel):
    name: str
    version: int
    target: str
    archive_existing: bool = False
    user_id: str = ""
    reason: str = ""
    details: dict[str, Any] | None = None


class WebhookCreate(BaseModel):
    url: str
    events: list[str] | None = None
    secret_env: str
    name: str | None = None
    user_id: str = ""


class Claim(BaseModel):
    now: int
    limit: int = Field(ge=1, le=10000)
    lease_ms: int = Field(ge=0)


class Attempt(BaseModel):
    ok: bool
    status: int | None = None
    error: str = ""
    next_attempt: int | None = None
    now: int | None = None


# -- the registry's operations, evaluated here -------------------------------------------

@router.post("/models/{name}/versions/{version}/promote", response_model=Promotion)
def promote(name: str, version: int, body: PromoteBody, request: Request) -> Response:
    done_ = promotion.promote(backend_of(request), name, version, body.stage,
                              archive_existing=body.archive_existing, reason=body.reason,
                              user=acting(request, body.user_id), request=body.request,
                              force=body.force)
    return answer(Promotion, done_)


@router.put("/models/{name}/aliases/{alias}", response_model=Promotion)
def move_alias(name: str, alias: str, body: AliasBody, request: Request) -> Response:
    done_ = promotion.move_alias(backend_of(request), name, alias, body.version,
                                 reason=body.reason, user=acting(request, body.user_id),
                                 request=body.request, force=body.force)
    return answer(Promotion, done_)


@router.delete("/models/{name}/aliases/{alias}", response_model=AuditEntry)
def delete_alias(name: str, alias: str, request: Request,
                 user_id: str | None = None) -> Response:
    entry = promotion.delete_alias(backend_of(request), name, alias,
                                   user=acting(request, user_id))
    return answer(AuditEntry, entry)


@router.post("/requests/{request_id}/approve", response_model=DecisionResult)
def approve(request_id: int, body: Comment, request: Request) -> Response:
    decided = promotion.approve(backend_of(request), request_id, comment=body.comment,
                                user=acting(request, body.user_id))
    return answer(DecisionResult, decided)


@router.post("/requests/{request_id}/reject", response_model=DecisionResult)
def reject(request_id: int, body: Comment, request: Request) -> Response:
    decided = promotion.reject(backend_of(request), request_id, comment=body.comment,
                               user=acting(request, body.user_id))
    return answer(DecisionResult, decided)


@router.post("/models/{name}/gates/check", response_model=GateResult)
def check_gates(name: str, body: GateCheck, request: Request) -> Response:
    result = promotion.check(backend_of(request), name, body.version, body.target)
    return answer(GateResult, result)


@router.post("/models/{name}/gates/should-promote", response_model=GateResult)
def should_promote(name: str, body: ShouldPromote, request: Request) -> Response:
    result = promotion.should_promote(backend_of(request), body.run_id, name, body.stage)
    return answer(GateResult, result)


# -- gate policies and permissions ----------------------------------------------------------

@router.put("/models/{name}/gates", response_model=GatePolicy)
def set_gate_policy(name: str, body: PolicyBody, request: Request) -> Response:
    """Store the next policy version from its YAML (validated here; MANAGE only)."""
    policy = promotion.set_policy(store_of(request), name, body.source, body.path,
                                  user=acting(request, body.user_id))
    return answer(GatePolicy, policy)


@router.get("/models/{name}/gates", response_model=GatePolicy | None)
def get_gate_policy(name: str, request: Request,
                    policy_version: int | None = None) -> Response:
    return answer(GatePolicy | None, store_of(request).get_gate_policy(name, policy_version))


@router.get("/models/{name}/permissions", response_model=dict[str, str])
def get_permissions(name: str, request: Request) -> Response:
    return answer(dict[str, str], store_of(request).get_permissions(name))


@router.put("/models/{name}/permissions")
def set_permission(name: str, body: PermissionBody, request: Request) -> Response:
    promotion.set_permission(store_of(request), name, body.user_id, body.level,
                             acting(request, body.granted_by))
    return done()


# -- the store's planned changes (checked by the registry: refused where gates apply) ----------

@router.post("/models/{name}/stage-changes", response_model=StageChangeResult)
def apply_stage_change(name: str, change: StageChange, request: Request) -> Response:
    moved = promotion.apply_planned_stage_change(
        backend_of(request), dataclasses.replace(change, name=name),
        acting(request, change.user_id))
    return answer(StageChangeResult, moved)


@router.post("/models/{name}/alias-moves", response_model=AuditEntry)
def apply_alias_move(name: str, move: AliasMove, request: Request) -> Response:
    entry = promotion.apply_planned_alias_move(
        backend_of(request), dataclasses.replace(move, name=name),
        acting(request, move.user_id))
    return answer(AuditEntry, entry)


@router.post("/requests/{request_id}/decisions", response_model=DecisionResult)
def decide_promotion_request(request_id: int, decision: Decision,
                             request: Request) -> Response:
    decided = promotion.apply_planned_decision(
        backend_of(request), dataclasses.replace(decision, request_id=request_id),
        acting(request, decision.user_id))
    return answer(DecisionResult, decided)


# -- promotion requests -----------------------------------------------------------------------

@router.post("/requests", response_model=PromotionRequest)
def create_promotion_request(body: RequestCreate, request: Request) -> Response:
    opened = promotion.apply_planned_request(
        backend_of(request), body.name, body.version, body.target, body.archive_existing,
        acting(request, body.user_id), body.reason, body.details)
    return answer(PromotionRequest, opened)


@router.get("/requests", response_model=list[PromotionRequest])
def search_promotion_requests(request: Request, name: str | None = None,
                              state: str | None = None) -> Response:
    found = store_of(request).search_promotion_requests(name, state)
    return answer(list[PromotionRequest], found)


@router.get("/requests/{request_id}", response_model=PromotionRequest)
def get_promotion_request(request_id: int, request: Request) -> Response:
    return answer(PromotionRequest, store_of(request).get_promotion_request(request_id))


# -- webhooks ----------------------------------------------------------------------------------

@router.post("/webhooks", response_model=Webhook)
def create_webhook(body: WebhookCreate, request: Request) -> Response:
    hook = webhooks.add_hook(store_of(request), body.url, body.events, body.secret_env,
                             body.name, acting(request, body.user_id))
    return answer(Webhook, hook)


@router.get("/webhooks", response_model=list[Webhook])
def list_webhooks(request: Request, name: str | None = None) -> Response:
    return answer(list[Webhook], store_of(request).list_webhooks(name))


@router.delete("/webhooks/{webhook_id}")
def delete_webhook(webhook_id: int, request: Request, user_id: str = "") -> Response:
    webhooks.remove_hook(store_of(request), webhook_id, acting(request, user_id))
    return done()


@router.get("/webhooks/deliveries", response_model=list[WebhookDelivery])
def search_webhook_deliveries(request: Request, webhook_id: int | None = None,
                              name: str | None = None, state: str | None = None,
                              limit: int = 100) -> Response:
    found = store_of(request).search_webhook_deliveries(webhook_id, name, state, limit)
    return answer(list[WebhookDelivery], found)


@router.post("/webhooks/deliveries/claim", response_model=list[WebhookDelivery])
def claim_due_deliveries(body: Claim, request: Request) -> Response:
    found = store_of(request).claim_due_deliveries(body.now, body.limit, body.lease_ms)
    return answer(list[WebhookDelivery], found)


@router.post("/webhooks/deliveries/{delivery_id}/attempts")
def record_delivery_attempt(delivery_id: int, body: Attempt, request: Request) -> Response:
    store_of(request).record_delivery_attempt(delivery_id, body.ok, body.status, body.error,
                                              body.next_attempt, body.now)
    return done()


@router.get("/webhooks/deliveries/due", response_model=bool)
def has_due_deliveries(now: int, request: Request) -> Response:
    return answer(bool, store_of(request).has_due_deliveries(now))
