"""Who may do what, with `cairn server --auth`: every route's store is an `AuthorizedStore`
bound to the request's authenticated user, so each store call is checked — whichever
route (the MLflow routes, /api/v1, the registry's promotion functions) made it.

    READ    see an experiment and its runs, metrics, artifacts; a model and its
            versions, aliases, gates, history and requests
    EDIT    log runs and artifacts; register versions, edit tags and descriptions,
            rename, promote through the gates, move unprotected aliases, open requests
    MANAGE  delete or restore experiments, runs, models and versions; set gates and
            permissions; approve and reject requests, move protected aliases, --force
    admin   everything, and the server's webhooks

Experiment-level for experiments and runs (a run is checked through its experiment),
model-level for the registry. A user's level is their own grant, else the grant to "*",
else the server's `--default-permission` (READ, as MLflow's basic-auth default; NONE
hides everything not granted). Whoever creates an experiment or a model holds MANAGE on
it. Searches return only what the user may READ.

The registry's own rules (approvers other than the requester, protected aliases,
--force) stay in `cairn.registry.promotion`; they read `get_permissions`, which answers
here with the user's effective level so both agree. Every user id a write records (runs,
audit rows, decisions) is the authenticated user's, whatever the request said.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from typing import TypeVar

from cairn.errors import NotFoundError, PermissionDenied
from cairn.store.base import ACTIVE_ONLY, MetadataStore, PackageRecord
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
    Webhook,
    WebhookDelivery,
)
from cairn.store.levels import EDIT, EVERYONE, MANAGE, READ, allows
from cairn.store.sql.auth import AuthStore, User

NONE = "NONE"  # no grant at all (--default-permission NONE)
T = TypeVar("T")


def effective(grants: dict[str, str], user: User, default: str) -> str:
    if user.is_admin:
        return MANAGE
    return grants.get(user.name, grants.get(EVERYONE, default))


class AuthorizedStore(MetadataStore):
    """`inner`, as `user` may use it (one per request: it remembers levels it read)."""

    def __init__(self, inner: MetadataStore, auth: AuthStore, user: User,
                 default: str = READ) -> None:
        self.inner, self.auth, self.user, self.default = inner, auth, user, default
        self._experiments: dict[str, str] = {}
        self._models: dict[str, str] = {}

    # -- levels ------------------------------------------------------------------------

    def experiment_level(self, experiment_id: str) -> str:
        key = str(experiment_id)
        if key not in self._experiments:
            grants = {} if self.user.is_admin else self.auth.experiment_permissions(key)
            self._experiments[key] = effective(grants, self.user, self.default)
        return self._experiments[key]

    def model_level(self, name: str) -> str:
        """NotFoundError for an unknown model."""
        if name not in self._models:
            grants = self.inner.get_permissions(name)
            self._models[name] = effective(grants, self.user, self.default)
        return self._models[name]

    def require_experiment(self, experiment_id: str, needed: str, doing: str) -> None:
        level = self.experiment_level(experiment_id)
        if not allows(level, needed):
            raise self._denied(level, f"experiment {experiment_id}", needed, doing,
                               f"--experiment {experiment_id}")

    def require_run(self, run_id: str, needed: str, doing: str) -> None:
        experiment_id = self.auth.experiment_of_run(run_id)
        if experiment_id is None:
            raise NotFoundError(f"run '{run_id}' does not exist")
        self.require_experiment(experiment_id, needed, doing)

    def require_model(self, name: str, needed: str, doing: str) -> None:
        level = self.model_level(name)
        if not allows(level, needed):
            raise self._denied(level, f"model '{name}'", needed, doing, f"--model {name}")

    def require_admin(self, doing: str) -> None:
        if not self.user.is_admin:
            raise PermissionDenied(f"{doing} is for the server's admins; {self.user.name} "
                                   "is not one")

    def _denied(self, level: str, what: str, needed: str, doing: str,
                option: str) -> PermissionDenied:
        held = "no access" if level == NONE else level
        return PermissionDenied(
            f"{self.user.name} holds {held} on {what}; {doing} needs {needed} — ask its "
            f"MANAGE holder or an admin (`cairn server grant {self.user.name} {needed} "
            f"{option}`)")

    def _readable_model(self, name: str) -> bool:
        try:
            return allows(self.model_level(name), READ)
        except NotFoundError:
            return False

    def _page(self, page: PagedList[T], keep: Callable[[T], bool]) -> PagedList[T]:
        # Filtering a page may shorten it; the token still continues where it ended.
        return PagedList([item for item in page if keep(item)], page.token)

    # -- experiments -----------------------------------------------------------------

    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, str] | None = None) -> str:
        experiment_id = self.inner.create_experiment(name, artifact_location, tags)
        self.auth.set_experiment_permission(experiment_id, self.user.name, MANAGE)
        return experiment_id

    def get_experiment(self, experiment_id: str) -> Experiment:
        found = self.inner.get_experiment(experiment_id)
        self.require_experiment(found.experiment_id, READ, "reading it")
        return found

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        found = self.inner.get_experiment_by_name(name)
        if found is not None:
            self.require_experiment(found.experiment_id, READ, "reading it")
        return found

    def search_experiments(self, view_type: str = ACTIVE_ONLY, max_results: int = 1000,
                           filter_string: str | None = None,
                           order_by: Sequence[str] | None = None,
                           page_token: str | None = None) -> PagedList[Experiment]:
        page = self.inner.search_experiments(view_type, max_results, filter_string, order_by,
                                             page_token)
        return self._page(page, lambda e: allows(self.experiment_level(e.experiment_id),
                                                 READ))

    def delete_experiment(self, experiment_id: str) -> None:
        self.require_experiment(experiment_id, MANAGE, "deleting it")
        self.inner.delete_experiment(experiment_id)

    def restore_experiment(self, experiment_id: str) -> None:
        self.require_experiment(experiment_id, MANAGE, "restoring it")
        self.inner.restore_experiment(experiment_id)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self.require_experiment(experiment_id, EDIT, "tagging it")
        self.inner.set_experiment_tag(experiment_id, key, value)

    # -- runs ------------------------------------------------------------------------

    def create_run(self, experiment_id: str, user_id: str, start_time: int,
                   tags: Sequence[RunTag] = (), run_name: str | None = None) -> Run:
        self.require_experiment(experiment_id, EDIT, "creating a run")
        return self.inner.create_run(experiment_id, self.user.name, start_time, tags, run_name)

    def get_run(self, run_id: str) -> Run:
        self.require_run(run_id, READ, "reading a run")
        return self.inner.get_run(run_id)

    def update_run_info(self, run_id: str, status: str | None = None,
                        end_time: int | None = None, run_name: str | None = None) -> Run:
        self.require_run(run_id, EDIT, "updating a run")
        return self.inner.update_run_info(run_id, status, end_time, run_name)

    def finish_run(self, run_id: str, status: str, end_time: int,
                   metrics: Sequence[Metric] = ()) -> None:
        self.require_run(run_id, EDIT, "ending a run")
        self.inner.finish_run(run_id, status, end_time, metrics)

    def delete_run(self, run_id: str) -> None:
        self.require_run(run_id, MANAGE, "deleting a run")
        self.inner.delete_run(run_id)

    def delete_runs(self, run_ids: Sequence[str]) -> list[str]:
        for run_id in run_ids:
            self.require_run(run_id, MANAGE, "deleting a run")
        return self.inner.delete_runs(run_ids)

    def restore_run(self, run_id: str) -> None:
        self.require_run(run_id, MANAGE, "restoring a run")
        self.inner.restore_run(run_id)

    def log_batch(self, run_id: str, metrics: Sequence[Metric] = (),
                  params: Sequence[Param] = (), tags: Sequence[RunTag] = ()) -> None:
        self.require_run(run_id, EDIT, "logging to a run")
        self.inner.log_batch(run_id, metrics, params, tags)

    def delete_tag(self, run_id: str, key: str) -> None:
        self.require_run(run_id, EDIT, "deleting a run's tag")
        self.inner.delete_tag(run_id, key)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        self.require_run(run_id, READ, "reading a run")
        return self.inner.get_metric_history(run_id, key)

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str = "",
                    run_view_type: str = ACTIVE_ONLY, max_results: int = 1000,
                    order_by: Sequence[str] | None = None,
                    page_token: str | None = None) -> PagedList[Run]:
        for experiment_id in experiment_ids:
            self.require_experiment(str(experiment_id), READ, "searching its runs")
        return self.inner.search_runs(experiment_ids, filter_string, run_view_type,
                                      max_results, order_by, page_token)

    def log_artifacts(self, run_id: str, artifacts: Sequence[Artifact]) -> None:
        self.require_run(run_id, EDIT, "logging artifacts")
        self.inner.log_artifacts(run_id, artifacts)

    def replace_artifacts(self, run_id: str, path: str, artifacts: Sequence[Artifact]) -> int:
        self.require_run(run_id, EDIT, "deleting artifacts")
        return self.inner.replace_artifacts(run_id, path, artifacts)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[Artifact]:
        self.require_run(run_id, READ, "reading a run's artifacts")
        return self.inner.list_artifacts(run_id, path)

    # -- registered models -----------------------------------------------------------

    def create_registered_model(self, name: str, tags: dict[str, str] | None = None,
                                description: str = "", user_id: str = "") -> RegisteredModel:
        return self.inner.create_registered_model(name, tags, description, self.user.name)

    def get_registered_model(self, name: str) -> RegisteredModel:
        self.require_model(name, READ, "reading it")
        return self.inner.get_registered_model(name)

    def search_registered_models(self, filter_string: str = "", max_results: int = 100,
                                 order_by: Sequence[str] | None = None,
                                 page_token: str | None = None
                                 ) -> PagedList[RegisteredModel]:
        page = self.inner.search_registered_models(filter_string, max_results, order_by,
                                                   page_token)
        return self._page(page, lambda m: self._readable_model(m.name))

    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        self.require_model(name, EDIT, "describing it")
        return self.inner.update_registered_model(name, description)

    def rename_registered_model(self, name: str, new_name: str,
                                user_id: str = "") -> RegisteredModel:
        self.require_model(name, EDIT, "renaming it")
        return self.inner.rename_registered_model(name, new_name, self.user.name)

    def delete_registered_model(self, name: str, user_id: str = "") -> None:
        self.require_model(name, MANAGE, "deleting it")
        self.inner.delete_registered_model(name, self.user.name)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self.require_model(name, EDIT, "tagging it")
        self.inner.set_registered_model_tag(name, key, value)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.require_model(name, EDIT, "deleting its tag")
        self.inner.delete_registered_model_tag(name, key)

    # -- model versions --------------------------------------------------------------

    def create_model_version(self, name: str, source: str, digest: str,
                             run_id: str | None = None, tags: dict[str, str] | None = None,
                             description: str = "", user_id: str = "") -> ModelVersion:
        with contextlib.suppress(NotFoundError):  # a new model: its creator manages it
            self.require_model(name, EDIT, "registering a version")
        if run_id:
            self.require_run(run_id, READ, "registering a version from a run")
        return self.inner.create_model_version(name, source, digest, run_id, tags,
                                               description, self.user.name)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        self.require_model(name, READ, "reading its versions")
        return self.inner.get_model_version(name, version)

    def update_model_version(self, name: str, version: int, description: str,
                             user_id: str = "") -> ModelVersion:
        self.require_model(name, EDIT, "describing a version")
        return self.inner.update_model_version(name, version, description, self.user.name)

    def delete_model_version(self, name: str, version: int, user_id: str = "") -> None:
        self.require_model(name, MANAGE, "deleting a version")
        self.inner.delete_model_version(name, version, self.user.name)

    def apply_stage_change(self, change: StageChange) -> StageChangeResult:
        self.require_model(change.name, EDIT, "promoting")
        return self.inner.apply_stage_change(dataclasses.replace(change,
                                                                 user_id=self.user.name))

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None
                            ) -> list[ModelVersion]:
        self.require_model(name, READ, "reading its versions")
        return self.inner.get_latest_versions(name, stages)

    def get_stage_holders(self, name: str, stage: str) -> tuple[int, ...]:
        self.require_model(name, READ, "reading its stages")
        return self.inner.get_stage_holders(name, stage)

    def search_model_versions(self, filter_string: str = "", max_results: int = 10000,
                              order_by: Sequence[str] | None = None,
                              page_token: str | None = None) -> PagedList[ModelVersion]:
        page = self.inner.search_model_versions(filter_string, max_results, order_by,
                                                page_token)
        return self._page(page, lambda mv: self._readable_model(mv.name))

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self.require_model(name, EDIT, "tagging a version")
        self.inner.set_model_version_tag(name, version, key, value)

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        self.require_model(name, EDIT, "deleting a version's tag")
        self.inner.delete_model_version_tag(name, version, key)

    def apply_alias_move(self, move: AliasMove) -> AuditEntry:
        self.require_model(move.name, EDIT, "moving an alias")
        return self.inner.apply_alias_move(dataclasses.replace(move, user_id=self.user.name))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        self.require_model(name, READ, "reading its aliases")
        return self.inner.get_model_version_by_alias(name, alias)

    def get_audit_log(self, name: str, version: int | None = None) -> list[AuditEntry]:
        self.require_model(name, READ, "reading its history")
        return self.inner.get_audit_log(name, version)

    def add_audit_entry(self, name: str, version: int | None, action: str, user_id: str = "",
                        reason: str = "", details: dict[str, object] | None = None,
                        to_value: str | None = None) -> AuditEntry:
        self.require_model(name, EDIT, "recording an event")
        return self.inner.add_audit_entry(name, version, action, self.user.name, reason,
                                          details, to_value)

    # -- governance ------------------------------------------------------------------

    def set_gate_policy(self, name: str, source: str, document: dict[str, object],
                        user_id: str = "") -> GatePolicy:
        self.require_model(name, MANAGE, "setting gates")
        return self.inner.set_gate_policy(name, source, document, self.user.name)

    def get_gate_policy(self, name: str, policy_version: int | None = None
                        ) -> GatePolicy | None:
        self.require_model(name, READ, "reading its gates")
        return self.inner.get_gate_policy(name, policy_version)

    def get_permissions(self, name: str) -> dict[str, str]:
        """The grants, and this user at their effective level (an admin at MANAGE), so
        `cairn.registry.permissions.level_of` agrees with this store."""
        self.require_model(name, READ, "reading its permissions")
        return {**self.inner.get_permissions(name), self.user.name: self.model_level(name)}

    def set_permission(self, name: str, user_id: str, level: str | None,
                       granted_by: str = "") -> None:
        self.require_model(name, MANAGE, "granting permissions")
        self.inner.set_permission(name, user_id, level, self.user.name)
        self._models.pop(name, None)

    def create_promotion_request(self, name: str, version: int, target: str,
                                 archive_existing: bool = False, user_id: str = "",
                                 reason: str = "", details: dict[str, object] | None = None
                                 ) -> PromotionRequest:
        self.require_model(name, EDIT, "requesting a promotion")
        return self.inner.create_promotion_request(name, version, target, archive_existing,
                                                   self.user.name, reason, details)

    def get_promotion_request(self, request_id: int) -> PromotionRequest:
        found = self.inner.get_promotion_request(request_id)
        self.require_model(found.name, READ, "reading its requests")
        return found

    def search_promotion_requests(self, name: str | None = None, state: str | None = None
                                  ) -> list[PromotionRequest]:
        if name is not None:
            self.require_model(name, READ, "reading its requests")
        return [r for r in self.inner.search_promotion_requests(name, state)
                if self._readable_model(r.name)]

    def decide_promotion_request(self, decision: Decision) -> DecisionResult:
        request = self.inner.get_promotion_request(decision.request_id)
        self.require_model(request.name, MANAGE, "deciding a request")
        change = decision.change
        if change is not None:
            change = dataclasses.replace(change, user_id=self.user.name)
        return self.inner.decide_promotion_request(
            dataclasses.replace(decision, user_id=self.user.name, change=change))

    # -- model packages: built by a model's editors, seen by its readers ----------------

    def record_package(self, name: str, version: int, digest: str, object_id: str,
                       size: int, user_id: str = "") -> PackageRecord:
        self.require_model(name, EDIT, "recording a package")
        return self.inner.record_package(name, version, digest, object_id, size,
                                         self.user.name)

    def list_packages(self, name: str | None = None, version: int | None = None
                      ) -> list[PackageRecord]:
        if name is not None:
            self.require_model(name, READ, "listing its packages")
            return self.inner.list_packages(name, version)
        return [p for p in self.inner.list_packages() if self._readable_model(p.name)]

    # -- webhooks: a model's are its MANAGE holders', the global ones the admins' --------

    def _require_hooks(self, name: str | None, doing: str) -> None:
        if name is None:
            self.require_admin(doing + " for every model")
        else:
            self.require_model(name, MANAGE, doing)

    def create_webhook(self, url: str, events: Sequence[str] | None, secret_env: str,
                       name: str | None = None, user_id: str = "") -> Webhook:
        self._require_hooks(name, "adding a webhook")
        return self.inner.create_webhook(url, events, secret_env, name, self.user.name)

    def list_webhooks(self, name: str | None = None) -> list[Webhook]:
        self._require_hooks(name, "listing webhooks")
        return self.inner.list_webhooks(name)

    def _hook(self, webhook_id: int) -> Webhook:
        for hook in self.inner.list_webhooks():
            if hook.id == int(webhook_id):
                return hook
        raise NotFoundError(f"webhook {webhook_id} does not exist")

    def delete_webhook(self, webhook_id: int, user_id: str = "") -> None:
        self._require_hooks(self._hook(webhook_id).model, "removing a webhook")
        self.inner.delete_webhook(webhook_id, self.user.name)

    def search_webhook_deliveries(self, webhook_id: int | None = None,
                                  name: str | None = None, state: str | None = None,
                                  limit: int = 100) -> list[WebhookDelivery]:
        if webhook_id is not None:
            self._require_hooks(self._hook(webhook_id).model, "reading deliveries")
        else:
            self._require_hooks(name, "reading deliveries")
        return self.inner.search_webhook_deliveries(webhook_id, name, state, limit)

    def claim_due_deliveries(self, now: int, limit: int, lease_ms: int
                             ) -> list[WebhookDelivery]:
        self.require_admin("delivering webhooks")
        return self.inner.claim_due_deliveries(now, limit, lease_ms)

    def record_delivery_attempt(self, delivery_id: int, ok: bool, status: int | None,
                                error: str, next_attempt: int | None,
                                now: int | None = None) -> None:
        self.require_admin("delivering webhooks")
        self.inner.record_delivery_attempt(delivery_id, ok, status, error, next_attempt, now)

    def has_due_deliveries(self, now: int) -> bool:
        # Asked after every registry change, to start the delivery worker (which opens
        # the database itself): a yes or no, for anyone.
        return self.inner.has_due_deliveries(now)

    def referenced_digests(self, excluding_runs: Sequence[str] = (),
                           excluding_versions: Sequence[tuple[str, int]] = ()) -> set[str]:
        self.require_admin("listing every referenced digest")
        return self.inner.referenced_digests(excluding_runs, excluding_versions)

    def digests_of_runs(self, run_ids: Sequence[str]) -> dict[str, bool]:
        self.require_admin("listing the objects of runs of every experiment")
        return self.inner.digests_of_runs(run_ids)

    def close(self) -> None:
        """The inner store is the server's, open for its lifetime: not closed here."""
