"""Gate policies, permissions, promotion requests and free-standing audit rows.

What the registry decides (does this promotion pass its gates? may this user approve?)
it decides in `cairn.registry`; this half of the store keeps what those decisions rest
on, and applies an approved request's change in the transaction that records the
approval — so two approvers racing make one transition.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Engine, Row, select

from cairn.errors import ConflictError, NotFoundError, UserError
from cairn.store.base import MetadataStore
from cairn.store.entities import (
    AliasMove,
    Approval,
    AuditEntry,
    Decision,
    DecisionResult,
    GatePolicy,
    PromotionRequest,
    StageChangeResult,
)
from cairn.store.sql.common import now_ms
from cairn.store.sql.engine import transaction
from cairn.store.sql.registry import (
    _model_row,
    _version_row,
    alias_move,
    policy_version,
    record_audit,
    stage_change,
)
from cairn.store.sql.tables import (
    gate_policies,
    model_permissions,
    promotion_requests,
    request_approvals,
)

LEVELS = ("READ", "EDIT", "MANAGE")
REQUEST_STATES = ("open", "approved", "rejected")
pr, ap = promotion_requests, request_approvals


class GovernanceStore(MetadataStore):
    """Gates, permissions and requests: the governance half of SqlStore."""

    _engine: Engine

    def add_audit_entry(self, name: str, version: int | None, action: str, user_id: str = "",
                        reason: str = "", details: dict[str, object] | None = None,
                        to_value: str | None = None) -> AuditEntry:
        with transaction(self._engine, write=True, durable=True) as conn:
            model = _model_row(conn, name)
            if version is not None:
                _version_row(conn, name, version)
            return record_audit(conn, model.model_id, name, version, action, None, to_value,
                         user_id, reason, details)

    # -- gate policies ---------------------------------------------------------------

    def set_gate_policy(self, name: str, source: str, document: dict[str, object],
                        user_id: str = "") -> GatePolicy:
        with transaction(self._engine, write=True, durable=True) as conn:
            model = _model_row(conn, name, for_update=True)
            number = policy_version(conn, model.model_id) + 1
            now = now_ms()
            conn.execute(gate_policies.insert(), {
                "model_id": model.model_id, "policy_version": number, "source": source,
                "document": json.dumps(document, sort_keys=True), "user_id": user_id,
                "created_time": now})
            record_audit(conn, model.model_id, name, None, "set_gates",
                  str(number - 1) if number > 1 else None, str(number), user_id,
                  details={"policy_version": number}, now=now)
            return GatePolicy(name, number, source, document, user_id, now)

    def get_gate_policy(self, name: str, policy_version: int | None = None
                        ) -> GatePolicy | None:
        g = gate_policies
        with transaction(self._engine, write=False) as conn:
            model = _model_row(conn, name)
            query = select(g).where(g.c.model_id == model.model_id)
            if policy_version is not None:
                query = query.where(g.c.policy_version == int(policy_version))
            row = conn.execute(query.order_by(g.c.policy_version.desc()).limit(1)).first()
            if row is None:
                if policy_version is not None:
                    raise NotFoundError(f"model '{name}' has no gate policy version "
                                        f"{policy_version}")
                return None
            return GatePolicy(name, row.policy_version, row.source, json.loads(row.document),
                              row.user_id, row.created_time)

    # -- permissions -----------------------------------------------------------------

    def get_permissions(self, name: str) -> dict[str, str]:
        p = model_permissions
        with transaction(self._engine, write=False) as conn:
            model = _model_row(conn, name)
            return dict(conn.execute(select(p.c.user_id, p.c.level)
                                     .where(p.c.model_id == model.model_id)).all())

    def set_permission(self, name: str, user_id: str, level: str | None,
                       granted_by: str = "") -> None:
        if level is not None and level not in LEVELS:
            raise UserError(f"unknown permission {level!r}; use one of {', '.join(LEVELS)}")
        if not user_id:
            raise UserError("a permission needs a user (or '*' for everyone else)")
        p = model_permissions
        with transaction(self._engine, write=True, durable=True) as conn:
            model = _model_row(conn, name, for_update=True)
            where = (p.c.model_id == model.model_id, p.c.user_id == user_id)
            previous = conn.execute(select(p.c.level).where(*where)).scalar()
            conn.execute(p.delete().where(*where))
            if level is not None:
                conn.execute(p.insert(), {"model_id": model.model_id, "user_id": user_id,
                                          "level": level})
            record_audit(conn, model.model_id, name, None, "set_permission", previous, level,
                  granted_by, details={"user": user_id})

    # -- promotion requests ----------------------------------------------------------

    def create_promotion_request(self, name: str, version: int, target: str,
                                 archive_existing: bool = False, user_id: str = "",
                                 reason: str = "", details: dict[str, object] | None = None
                                 ) -> PromotionRequest:
        with transaction(self._engine, write=True, durable=True) as conn:
            model = _model_row(conn, name, for_update=True)
            row = _version_row(conn, name, version)
            now = now_ms()
            request_id = conn.execute(pr.insert().returning(pr.c.id), {
                "model_id": model.model_id, "model_name": name, "version": row.version,
                "target": target, "archive_existing": archive_existing,
                "from_stage": row.current_stage, "state": "open", "requested_by": user_id,
                "reason": reason, "created_time": now, "updated_time": now,
                "decided_by": None, "decision_comment": ""}).scalar_one()
            record_audit(conn, model.model_id, name, row.version, "request_opened",
                  row.current_stage, target, user_id, reason,
                  {"request_id": request_id, **(details or {})}, now)
            return _request(conn, _request_row(conn, request_id))

    def get_promotion_request(self, request_id: int) -> PromotionRequest:
        with transaction(self._engine, write=False) as conn:
            return _request(conn, _request_row(conn, request_id))

    def search_promotion_requests(self, name: str | None = None, state: str | None = None
                                  ) -> list[PromotionRequest]:
        if state is not None and state not in REQUEST_STATES:
            raise UserError(f"unknown request state {state!r}; use one of "
                            f"{', '.join(REQUEST_STATES)}")
        query = select(pr).order_by(pr.c.id.desc())
        with transaction(self._engine, write=False) as conn:
            if name is not None:
                query = query.where(pr.c.model_id == _model_row(conn, name).model_id)
            if state is not None:
                query = query.where(pr.c.state == state)
            return [_request(conn, row) for row in conn.execute(query).all()]

    def decide_promotion_request(self, decision: Decision) -> DecisionResult:
        with transaction(self._engine, write=True, durable=True) as conn:
            first = _request_row(conn, decision.request_id)
            model = _model_row(conn, first.model_name, for_update=True)  # decisions queue
            row = _request_row(conn, decision.request_id)  # as it is under the lock
            if row.state != "open":
                raise ConflictError(f"request {row.id} is already {row.state}"
                                    + (f" by {row.decided_by}" if row.decided_by else ""))
            version = _version_row(conn, row.model_name, row.version)
            now = now_ms()
            if not decision.approve:
                _close(conn, row.id, "rejected", decision, now)
                record_audit(conn, model.model_id, row.model_name, row.version, "request_rejected",
                      row.from_stage, row.target, decision.user_id, decision.comment,
                      {"request_id": row.id, **decision.details}, now)
                return DecisionResult(_request(conn, _request_row(conn, row.id)), None)
            if version.current_stage != row.from_stage:
                raise ConflictError(
                    f"request {row.id} cannot be approved: version {row.version} of "
                    f"'{row.model_name}' moved from {row.from_stage} to "
                    f"{version.current_stage} since it was opened; reject it and open a new one")
            if conn.execute(select(ap.c.user_id).where(ap.c.request_id == row.id,
                                                       ap.c.user_id == decision.user_id)).first():
                raise ConflictError(f"{decision.user_id} has already approved request {row.id}")
            conn.execute(ap.insert(), {"request_id": row.id, "user_id": decision.user_id,
                                       "comment": decision.comment, "timestamp": now})
            count = len(conn.execute(select(ap.c.user_id)
                                     .where(ap.c.request_id == row.id)).all())
            applied: StageChangeResult | AuditEntry | None = None
            if count >= decision.required and decision.change is not None:
                change = decision.change
                applied = (alias_move(conn, model, change) if isinstance(change, AliasMove)
                           else stage_change(conn, model, change))
                _close(conn, row.id, "approved", decision, now)
                record_audit(conn, model.model_id, row.model_name, row.version, "request_approved",
                      row.from_stage, row.target, decision.user_id, decision.comment,
                      {"request_id": row.id, "approvals": count, **decision.details}, now)
            else:
                conn.execute(pr.update().where(pr.c.id == row.id).values(updated_time=now))
            return DecisionResult(_request(conn, _request_row(conn, row.id)), applied)


def _close(conn: Connection, request_id: int, state: str, decision: Decision,
           now: int) -> None:
    conn.execute(pr.update().where(pr.c.id == request_id).values(
        state=state, decided_by=decision.user_id, decision_comment=decision.comment,
        updated_time=now))


def _request_row(conn: Connection, request_id: int) -> Row[Any]:
    try:
        number = int(request_id)
    except (TypeError, ValueError):
        raise UserError(f"invalid request id {request_id!r}: use a number like 3") from None
    row = conn.execute(select(pr).where(pr.c.id == number)).first()
    if row is None:
        raise NotFoundError(f"promotion request {request_id} does not exist; "
                            "`cairn models requests` lists them")
    return row


def _request(conn: Connection, row: Row[Any]) -> PromotionRequest:
    approvals = tuple(Approval(a.user_id, a.comment, a.timestamp) for a in conn.execute(
        select(ap).where(ap.c.request_id == row.id).order_by(ap.c.timestamp, ap.c.user_id)))
    return PromotionRequest(row.id, row.model_name, row.version, row.target,
                            bool(row.archive_existing), row.from_stage, row.state,
                            row.requested_by, row.reason, row.created_time, row.updated_time,
                            row.decided_by, row.decision_comment, approvals)
