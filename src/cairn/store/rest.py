"""RestStore: the `MetadataStore` of a Cairn server, over its /api/v1/ REST API.

`cairn.set_tracking_uri("http://host:5000")` (or CAIRN_TRACKING_URI) opens one, and the
whole Python API and every `cairn runs|experiments|models` command then work through
the server. Values travel in the store's wire codec (`cairn.store.wire`); the server's
error answers become the same Cairn errors SqlStore raises, so callers cannot tell the
difference — except that the registry's rules are the server's to apply
(`enforces_registry_rules`): promotions, aliases and approvals go to its operations,
and its gates decide.

Credentials, first found: CAIRN_TRACKING_TOKEN or MLFLOW_TRACKING_TOKEN (bearer), else
MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (HTTP basic), as the mlflow client
sends them. The acting user's name goes along in X-Cairn-User, which a server without
--auth records (with --auth, the token's user acts). httpx is imported only here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote

from cairn import errors
from cairn.identity import current_user
from cairn.store import wire
from cairn.store.base import (
    ACTIVE_ONLY,
    MetadataStore,
    PackageRecord,
    check_model_name,
    checked_metric,
    version_number,
)
from cairn.store.entities import (
    AliasMove,
    Artifact,
    AuditEntry,
    Decision,
    DecisionResult,
    Experiment,
    GatePolicy,
    Metric,
    ModelVersion,
    PagedList,
    Param,
    PromotionRequest,
    RegisteredModel,
    Run,
    RunTag,
    StageChange,
    StageChangeResult,
    Verdict,
    Webhook,
    WebhookDelivery,
)

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")
API = "/api/v1"
TIMEOUT_S = 60.0
CHUNK = 1 << 20
MAX_ASKED_RUNS = 10_000  # run ids per request (the server takes up to 100,000)

# The server's error codes (cairn.server.errors.TABLE), back to the errors they came from.
ERRORS: dict[str, type[errors.CairnError]] = {
    "PERMISSION_DENIED": errors.PermissionDenied,
    "UNAUTHENTICATED": errors.PermissionDenied,
    "RESOURCE_DOES_NOT_EXIST": errors.NotFoundError,
    "RESOURCE_CONFLICT": errors.ConflictError,
    "RESOURCE_ALREADY_EXISTS": errors.ConflictError,
    "INVALID_STATE": errors.IntegrityError,
    "INVALID_PARAMETER_VALUE": errors.UserError,
    "TEMPORARILY_UNAVAILABLE": errors.DatabaseError,
}


def seg(value: object, what: str) -> str:
    """One path segment, percent-encoded; an empty one names nothing (as in SqlStore)."""
    text = str(value)
    if not text or text in (".", "..") or "/" in text:  # no such name can exist
        raise errors.NotFoundError(f"no {what} named {text!r}")
    return quote(text, safe="")


class RestStore(MetadataStore):
    enforces_registry_rules = True  # the server evaluates gates and permissions

    def __init__(self, url: str, client: httpx.Client | None = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._client = client or httpx.Client(base_url=self.url + API, timeout=TIMEOUT_S,
                                               auth=credentials(), follow_redirects=False)

    def __repr__(self) -> str:
        return f"RestStore({self.url!r})"

    # -- the wire ----------------------------------------------------------------------

    def _get(self, kind: type[T], method: str, path: str, body: Any = None,
             params: dict[str, Any] | None = None) -> T:
        """A call whose answer is a `kind`, decoded."""
        return cast(T, wire.load(kind, self._call(method, path, body, params=params)))

    def _send(self, method: str, path: str, body: Any = None,
              params: dict[str, Any] | None = None) -> None:
        """A call answered by nothing but success."""
        self._call(method, path, body, params=params)

    def _call(self, method: str, path: str, body: Any = None, *,
              params: dict[str, Any] | None = None) -> bytes:
        import httpx

        headers = {"X-Cairn-User": current_user()}
        content = None
        if body is not None:
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = wire.JSON
        try:
            response = self._client.request(method, path, content=content, headers=headers,
                                            params=_query(params))
        except httpx.HTTPError as e:
            raise errors.DatabaseError(f"cannot reach the Cairn server at {self.url}: {e}; "
                                       "is `cairn server` running there?") from None
        if response.status_code >= 400:
            raise self._error(response)
        return response.content

    def _error(self, response: httpx.Response) -> errors.CairnError:
        try:
            body = response.json()
            code, message = str(body["error_code"]), str(body["message"])
        except (ValueError, KeyError, TypeError):
            return errors.DatabaseError(
                f"the server at {self.url} answered {response.status_code} without a Cairn "
                f"error (is it a Cairn server?): {response.text[:200]}")
        details = body.get("details") or {}
        if code == "GATE_REFUSED":
            verdicts = [wire.from_python(Verdict, v) for v in details.get("verdicts", ())]
            return errors.GateRefused(message, verdicts)
        if code == "APPROVAL_PENDING":
            return errors.ApprovalPending(message, details.get("request_id"))
        if code == "INTERNAL_ERROR":
            return errors.DatabaseError(f"the server at {self.url} failed: {message}")
        return ERRORS.get(code, errors.CairnError)(message)

    def _page(self, kind: Any, method: str, path: str, body: Any = None,
              params: dict[str, Any] | None = None) -> PagedList[Any]:
        raw = self._get(dict[str, Any], method, path, body, params)
        items = wire.from_python(list[kind], raw["items"])
        return PagedList(items, raw.get("next_page_token"))

    @staticmethod
    def _dump(kind: Any, value: Any) -> bytes:
        return wire.dump(kind, value)

    def call(self, kind: type[T], method: str, path: str, body: Any = None) -> T:
        """A registry operation the server evaluates (`cairn.registry.promotion` calls
        it when `enforces_registry_rules`), its answer decoded as `kind`."""
        return self._get(kind, method, path, body)

    # -- experiments ---------------------------------------------------------------------

    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, str] | None = None) -> str:
        found = self._get(dict[str, str], "POST", "/experiments", {
            "name": name, "artifact_location": artifact_location, "tags": tags})
        return str(found["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._get(Experiment, "GET", f"/experiments/{seg(experiment_id, 'experiment')}")

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            return self._get(Experiment, "GET", "/experiments/by-name", params={"name": name})
        except errors.NotFoundError:
            return None

    def search_experiments(self, view_type: str = ACTIVE_ONLY, max_results: int = 1000,
                           filter_string: str | None = None,
                           order_by: Sequence[str] | None = None,
                           page_token: str | None = None) -> PagedList[Experiment]:
        return self._page(Experiment, "GET", "/experiments", params={
            "view_type": view_type, "max_results": max_results, "filter": filter_string,
            "order_by": order_by, "page_token": page_token})

    def delete_experiment(self, experiment_id: str) -> None:
        self._send("DELETE", f"/experiments/{seg(experiment_id, 'experiment')}")

    def restore_experiment(self, experiment_id: str) -> None:
        self._send("POST", f"/experiments/{seg(experiment_id, 'experiment')}/restore")

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self._send("PUT", f"/experiments/{seg(experiment_id, 'experiment')}/tags",
                   {"key": key, "value": value})

    # -- runs ------------------------------------------------------------------------------

    def create_run(self, experiment_id: str, user_id: str, start_time: int,
                   tags: Sequence[RunTag] = (), run_name: str | None = None) -> Run:
        body = {"experiment_id": experiment_id, "user_id": user_id, "start_time": start_time,
                "tags": wire.to_python(list[RunTag], list(tags)), "run_name": run_name}
        return self._get(Run, "POST", "/runs", body)

    def get_run(self, run_id: str) -> Run:
        return self._get(Run, "GET", f"/runs/{seg(run_id, 'run')}")

    def update_run_info(self, run_id: str, status: str | None = None,
                        end_time: int | None = None, run_name: str | None = None) -> Run:
        return self._get(Run, "PATCH", f"/runs/{seg(run_id, 'run')}", {
            "status": status, "end_time": end_time, "run_name": run_name})

    def finish_run(self, run_id: str, status: str, end_time: int,
                   metrics: Sequence[Metric] = ()) -> None:
        self._send("POST", f"/runs/{seg(run_id, 'run')}/finish", _object(
            status=json.dumps(status), end_time=json.dumps(end_time),
            metrics=_metrics(metrics)))

    def delete_run(self, run_id: str) -> None:
        self._send("DELETE", f"/runs/{seg(run_id, 'run')}")

    def delete_runs(self, run_ids: Sequence[str]) -> list[str]:
        refused: list[str] = []
        ids = list(run_ids)
        for start in range(0, len(ids), MAX_ASKED_RUNS):  # the server's cap per request
            refused += self._get(list[str], "POST", "/runs/delete",
                                 {"run_ids": ids[start:start + MAX_ASKED_RUNS]})
        return refused

    def restore_run(self, run_id: str) -> None:
        self._send("POST", f"/runs/{seg(run_id, 'run')}/restore")

    def log_batch(self, run_id: str, metrics: Sequence[Metric] = (),
                  params: Sequence[Param] = (), tags: Sequence[RunTag] = ()) -> None:
        self._send("POST", f"/runs/{seg(run_id, 'run')}/batch", _object(
            metrics=_metrics(metrics),
            params=wire.dump(list[Param], list(params)),
            tags=wire.dump(list[RunTag], list(tags))))

    def delete_tag(self, run_id: str, key: str) -> None:
        self._send("DELETE", f"/runs/{seg(run_id, 'run')}/tags", params={"key": key})

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self._get(list[Metric], "GET", f"/runs/{seg(run_id, 'run')}/metrics/history",
                          params={"key": key})

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str = "",
                    run_view_type: str = ACTIVE_ONLY, max_results: int = 1000,
                    order_by: Sequence[str] | None = None,
                    page_token: str | None = None) -> PagedList[Run]:
        return self._page(Run, "POST", "/runs/search", {
            "experiment_ids": list(experiment_ids), "filter": filter_string or "",
            "view_type": run_view_type, "max_results": max_results,
            "order_by": list(order_by) if order_by is not None else None,
            "page_token": page_token})

    def log_artifacts(self, run_id: str, artifacts: Sequence[Artifact]) -> None:
        self._send("POST", f"/runs/{seg(run_id, 'run')}/artifacts",
                   _object(artifacts=wire.dump(list[Artifact], list(artifacts))))

    def replace_artifacts(self, run_id: str, path: str, artifacts: Sequence[Artifact]) -> int:
        found = self._get(dict[str, int], "POST", f"/runs/{seg(run_id, 'run')}/artifacts/replace",
                          _object(path=json.dumps(path),
                                  artifacts=wire.dump(list[Artifact], list(artifacts))))
        return int(found["removed"])

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[Artifact]:
        return self._get(list[Artifact], "GET", f"/runs/{seg(run_id, 'run')}/artifacts",
                          params={"path": path})

    # -- registered models ---------------------------------------------------------------------

    def create_registered_model(self, name: str, tags: dict[str, str] | None = None,
                                description: str = "", user_id: str = "") -> RegisteredModel:
        check_model_name(name)
        return self._get(RegisteredModel, "POST", "/models", {
            "name": name, "tags": tags, "description": description, "user_id": user_id})

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self._get(RegisteredModel, "GET", model_path(name))

    def search_registered_models(self, filter_string: str = "", max_results: int = 100,
                                 order_by: Sequence[str] | None = None,
                                 page_token: str | None = None
                                 ) -> PagedList[RegisteredModel]:
        return self._page(RegisteredModel, "GET", "/models", params={
            "filter": filter_string or "", "max_results": max_results, "order_by": order_by,
            "page_token": page_token})

    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        return self._get(RegisteredModel, "PATCH", model_path(name), {"description": description})

    def rename_registered_model(self, name: str, new_name: str,
                                user_id: str = "") -> RegisteredModel:
        return self._get(RegisteredModel, "POST", f"{model_path(name)}/rename",
                          {"new_name": new_name, "user_id": user_id})

    def delete_registered_model(self, name: str, user_id: str = "") -> None:
        self._send("DELETE", model_path(name), params={"user_id": user_id})

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self._send("PUT", f"{model_path(name)}/tags", {"key": key, "value": value})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._send("DELETE", f"{model_path(name)}/tags", params={"key": key})

    # -- model versions ------------------------------------------------------------------------

    def create_model_version(self, name: str, source: str, digest: str,
                             run_id: str | None = None, tags: dict[str, str] | None = None,
                             description: str = "", user_id: str = "") -> ModelVersion:
        check_model_name(name)
        return self._get(ModelVersion, "POST", f"{model_path(name)}/versions", {
            "source": source, "digest": digest, "run_id": run_id, "tags": tags,
            "description": description, "user_id": user_id})

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return self._get(ModelVersion, "GET", _version(name, version))

    def update_model_version(self, name: str, version: int, description: str,
                             user_id: str = "") -> ModelVersion:
        return self._get(ModelVersion, "PATCH", _version(name, version),
                          {"description": description, "user_id": user_id})

    def delete_model_version(self, name: str, version: int, user_id: str = "") -> None:
        self._send("DELETE", _version(name, version), params={"user_id": user_id})

    def apply_stage_change(self, change: StageChange) -> StageChangeResult:
        return self._get(StageChangeResult, "POST", f"{model_path(change.name)}/stage-changes",
                          self._dump(StageChange, change))

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None
                            ) -> list[ModelVersion]:
        return self._get(list[ModelVersion], "GET", f"{model_path(name)}/latest",
                          params={"stages": list(stages) if stages is not None else None})

    def get_stage_holders(self, name: str, stage: str) -> tuple[int, ...]:
        found = self._get(list[int], "GET",
                          f"{model_path(name)}/stages/{seg(stage, 'stage')}/holders")
        return tuple(found)

    def search_model_versions(self, filter_string: str = "", max_results: int = 10000,
                              order_by: Sequence[str] | None = None,
                              page_token: str | None = None) -> PagedList[ModelVersion]:
        return self._page(ModelVersion, "POST", "/model-versions/search", {
            "filter": filter_string or "", "max_results": max_results,
            "order_by": list(order_by) if order_by is not None else None,
            "page_token": page_token})

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self._send("PUT", f"{_version(name, version)}/tags", {"key": key, "value": value})

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        self._send("DELETE", f"{_version(name, version)}/tags", params={"key": key})

    def apply_alias_move(self, move: AliasMove) -> AuditEntry:
        return self._get(AuditEntry, "POST", f"{model_path(move.name)}/alias-moves",
                          self._dump(AliasMove, move))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self._get(ModelVersion, "GET", f"{model_path(name)}/aliases/{seg(alias, 'alias')}")

    def get_audit_log(self, name: str, version: int | None = None) -> list[AuditEntry]:
        return self._get(list[AuditEntry], "GET", f"{model_path(name)}/audit",
                          params={"version": version})

    def add_audit_entry(self, name: str, version: int | None, action: str, user_id: str = "",
                        reason: str = "", details: dict[str, object] | None = None,
                        to_value: str | None = None) -> AuditEntry:
        return self._get(AuditEntry, "POST", f"{model_path(name)}/audit", _object(
            version=json.dumps(version), action=json.dumps(action),
            user_id=json.dumps(user_id), reason=json.dumps(reason),
            details=wire.dump(dict[str, Any] | None, details),
            to_value=json.dumps(to_value)))

    # -- governance ----------------------------------------------------------------------------

    def set_gate_policy(self, name: str, source: str, document: dict[str, object],
                        user_id: str = "") -> GatePolicy:
        return self._get(GatePolicy, "PUT", f"{model_path(name)}/gates",
                          {"source": source, "user_id": user_id})

    def get_gate_policy(self, name: str, policy_version: int | None = None
                        ) -> GatePolicy | None:
        raw = self._call("GET", f"{model_path(name)}/gates",
                         params={"policy_version": policy_version})
        return cast("GatePolicy | None", wire.load(GatePolicy | None, raw))

    def get_permissions(self, name: str) -> dict[str, str]:
        return self._get(dict[str, str], "GET", f"{model_path(name)}/permissions")

    def set_permission(self, name: str, user_id: str, level: str | None,
                       granted_by: str = "") -> None:
        self._send("PUT", f"{model_path(name)}/permissions",
                   {"user_id": user_id, "level": level, "granted_by": granted_by})

    def create_promotion_request(self, name: str, version: int, target: str,
                                 archive_existing: bool = False, user_id: str = "",
                                 reason: str = "", details: dict[str, object] | None = None
                                 ) -> PromotionRequest:
        return self._get(PromotionRequest, "POST", "/requests", _object(
            name=json.dumps(name), version=json.dumps(version), target=json.dumps(target),
            archive_existing=json.dumps(archive_existing), user_id=json.dumps(user_id),
            reason=json.dumps(reason), details=wire.dump(dict[str, Any] | None, details)))

    def get_promotion_request(self, request_id: int) -> PromotionRequest:
        return self._get(PromotionRequest, "GET", f"/requests/{int(request_id)}")

    def search_promotion_requests(self, name: str | None = None, state: str | None = None
                                  ) -> list[PromotionRequest]:
        return self._get(list[PromotionRequest], "GET", "/requests",
                         params={"name": name, "state": state})

    def decide_promotion_request(self, decision: Decision) -> DecisionResult:
        return self._get(DecisionResult, "POST", f"/requests/{int(decision.request_id)}/decisions",
                          self._dump(Decision, decision))

    # -- webhooks ------------------------------------------------------------------------------

    def create_webhook(self, url: str, events: Sequence[str] | None, secret_env: str,
                       name: str | None = None, user_id: str = "") -> Webhook:
        return self._get(Webhook, "POST", "/webhooks", {
            "url": url, "events": list(events) if events is not None else None,
            "secret_env": secret_env, "name": name, "user_id": user_id})

    def list_webhooks(self, name: str | None = None) -> list[Webhook]:
        return self._get(list[Webhook], "GET", "/webhooks", params={"name": name})

    def delete_webhook(self, webhook_id: int, user_id: str = "") -> None:
        self._send("DELETE", f"/webhooks/{int(webhook_id)}", params={"user_id": user_id})

    def search_webhook_deliveries(self, webhook_id: int | None = None,
                                  name: str | None = None, state: str | None = None,
                                  limit: int = 100) -> list[WebhookDelivery]:
        return self._get(list[WebhookDelivery], "GET", "/webhooks/deliveries", params={
            "webhook_id": webhook_id, "name": name, "state": state, "limit": limit})

    def claim_due_deliveries(self, now: int, limit: int, lease_ms: int
                             ) -> list[WebhookDelivery]:
        return self._get(list[WebhookDelivery], "POST", "/webhooks/deliveries/claim",
                          {"now": now, "limit": limit, "lease_ms": lease_ms})

    def record_delivery_attempt(self, delivery_id: int, ok: bool, status: int | None,
                                error: str, next_attempt: int | None,
                                now: int | None = None) -> None:
        self._send("POST", f"/webhooks/deliveries/{int(delivery_id)}/attempts", {
            "ok": ok, "status": status, "error": error, "next_attempt": next_attempt,
            "now": now})

    def has_due_deliveries(self, now: int) -> bool:
        return bool(self._get(bool, "GET", "/webhooks/deliveries/due", params={"now": now}))

    def referenced_digests(self, excluding_runs: Sequence[str] = (),
                           excluding_versions: Sequence[tuple[str, int]] = ()) -> set[str]:
        if not excluding_runs and not excluding_versions:
            return set(self._get(list[str], "GET", "/objects/referenced"))
        body: dict[str, object] = {"excluding_runs": list(excluding_runs)}
        if excluding_versions:
            body["excluding_versions"] = [{"name": name, "version": int(version)}
                                          for name, version in excluding_versions]
        return set(self._get(list[str], "POST", "/objects/referenced", body))

    def digests_of_runs(self, run_ids: Sequence[str]) -> dict[str, bool]:
        found: dict[str, bool] = {}
        ids = list(run_ids)
        for start in range(0, len(ids), MAX_ASKED_RUNS):  # the server's cap per request
            found.update(self._get(dict[str, bool], "POST", "/objects/of-runs",
                                   {"run_ids": ids[start:start + MAX_ASKED_RUNS]}))
        return found

    # -- model packages ------------------------------------------------------------------------

    def record_package(self, name: str, version: int, digest: str, object_id: str,
                       size: int, user_id: str = "") -> PackageRecord:
        return self._get(PackageRecord, "POST", f"{_version(name, version)}/packages", {
            "digest": digest, "object_id": object_id, "size": size, "user_id": user_id})

    def list_packages(self, name: str | None = None, version: int | None = None
                      ) -> list[PackageRecord]:
        if name is None:
            return self._get(list[PackageRecord], "GET", "/packages")
        path = (f"{model_path(name)}/packages" if version is None
                else f"{_version(name, version)}/packages")
        return self._get(list[PackageRecord], "GET", path)

    # -- the server's objects (run artifacts and models, by digest) ---------------------------

    def missing_objects(self, oids: Iterable[str]) -> list[str]:
        asked = list(dict.fromkeys(oids))
        if not asked:
            return []
        found = self._get(dict[str, Any], "POST", "/objects/missing", {"oids": asked})
        return [str(o) for o in found["oids"]]

    def upload_object(self, oid: str, source: IO[bytes], size: int) -> None:
        """Stream one object to the server, which refuses it unless it hashes to `oid`."""
        def chunks() -> Iterable[bytes]:
            while block := source.read(CHUNK):
                yield block

        import httpx

        try:
            response = self._client.put(
                f"/objects/{seg(oid, 'object')}", content=chunks(),
                headers={"Content-Type": "application/octet-stream",
                         "Content-Length": str(size), "X-Cairn-User": current_user()})
        except httpx.HTTPError as e:
            raise errors.DatabaseError(f"cannot send object {oid} to {self.url}: {e}") from None
        if response.status_code >= 400:
            raise self._error(response)

    def download_object(self, oid: str, out: IO[bytes]) -> None:
        import httpx

        try:
            with self._client.stream("GET", f"/objects/{seg(oid, 'object')}",
                                     headers={"X-Cairn-User": current_user()}) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response)
                for block in response.iter_bytes(CHUNK):
                    out.write(block)
        except httpx.HTTPError as e:
            raise errors.DatabaseError(f"cannot fetch object {oid} from {self.url}: "
                                       f"{e}") from None

    def close(self) -> None:
        self._client.close()


def credentials() -> Any:
    """What the environment gives to authenticate with: a bearer token or a basic pair."""
    import httpx

    token = os.environ.get("CAIRN_TRACKING_TOKEN") or os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        def bearer(request: httpx.Request) -> httpx.Request:
            request.headers["Authorization"] = f"Bearer {token}"
            return request

        return bearer
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        return httpx.BasicAuth(user, password)
    return None


def _object(**fields: bytes | str) -> bytes:
    """A JSON object from fields already encoded (the codec's bytes, spliced unparsed)."""
    parts = [json.dumps(k).encode() + b":" + (v.encode() if isinstance(v, str) else v)
             for k, v in fields.items()]
    return b"{" + b",".join(parts) + b"}"


def _metrics(metrics: Sequence[Metric]) -> bytes:
    return wire.dump(list[Metric], [checked_metric(m) for m in metrics])


def _query(params: dict[str, Any] | None) -> list[tuple[str, str | int | float | bool | None]]:
    found: list[tuple[str, str | int | float | bool | None]] = []
    if not params:
        return found
    for key, value in params.items():
        if value is None:
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            found.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return found


def model_path(name: str) -> str:
    """The API path of model `name`."""
    return f"/models/{seg(name, 'registered model')}"


def _version(name: str, version: int) -> str:
    return f"{model_path(name)}/versions/{version_number(version)}"
