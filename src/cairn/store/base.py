"""MetadataStore: the one interface to runs, experiments and the model registry.

`SqlStore` (SQLite, PostgreSQL) implements it now; `RestStore` (a Cairn server) later.
Everything above this layer — the tracking API, `cairn.Client`, the CLI — is written
against this class only. Each method is one transaction: it either happens whole or
not at all, whatever other processes do at the same time.

Errors: unknown ids/names raise NotFoundError; names already taken, or an operation the
current state forbids, raise ConflictError; malformed input (a bad filter string, a bad
key) raises UserError. Nothing else escapes on purpose.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from cairn.errors import UserError
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

ACTIVE_ONLY = "ACTIVE_ONLY"
DELETED_ONLY = "DELETED_ONLY"
ALL = "ALL"
VIEW_TYPE_NAMES = {1: ACTIVE_ONLY, 2: DELETED_ONLY, 3: ALL}  # MLflow's ViewType numbers
DEFAULT_EXPERIMENT_ID = "0"  # "Default", as in MLflow; the first created one is "1"
DEFAULT_EXPERIMENT_NAME = "Default"


@dataclass(frozen=True)
class PackageRecord:
    """A model package built from a version (cairn.packaging): its digest (sha256 of its
    OCI manifest, the package's identity), the object holding the file, who built it."""

    name: str
    version: int
    digest: str
    object_id: str  # the package file in the object store (blake3)
    size: int
    user_id: str
    created_time: int  # ms


def as_view_type(value: int | str) -> str:
    """A view type as the store takes it, from MLflow's ViewType number or its name."""
    name = VIEW_TYPE_NAMES.get(value, value) if isinstance(value, int) else value.upper()
    if name not in VIEW_TYPE_NAMES.values():
        raise UserError(f"unknown view type {value!r}; use ACTIVE_ONLY, DELETED_ONLY or ALL "
                        "(or cairn.entities.ViewType)")
    return str(name)


def checked_metric(metric: Metric) -> Metric:
    """`metric` with a float value and integer step and timestamp, or a UserError."""
    try:
        return Metric(metric.key, float(metric.value), int(metric.timestamp), int(metric.step))
    except (TypeError, ValueError):
        raise UserError(f"invalid metric {metric.key!r}: value {metric.value!r}, step "
                        f"{metric.step!r} and timestamp {metric.timestamp!r} must be numbers"
                        ) from None


def check_model_name(name: object) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 256 or "/" in name:
        raise UserError(f"invalid model name {name!r}: use a non-empty string of at most "
                        "256 characters without '/'")


def version_number(version: object) -> int:
    """A model version number from what a caller passed, or a UserError."""
    try:
        number = int(str(version))
    except ValueError:
        raise UserError(f"invalid model version {version!r}: use a number like 3") from None
    if number < 1:
        raise UserError(f"invalid model version {version!r}: versions start at 1")
    return number


class MetadataStore(ABC):
    # True for a store whose server evaluates the registry's rules (gates, permissions)
    # itself: the registry then sends it operations, not planned changes (store/rest.py)
    enforces_registry_rules: bool = False

    # -- experiments -----------------------------------------------------------------

    @abstractmethod
    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, str] | None = None) -> str:
        """A new experiment's id; ConflictError if the name is taken."""

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None: ...

    @abstractmethod
    def search_experiments(self, view_type: str = ACTIVE_ONLY, max_results: int = 1000,
                           filter_string: str | None = None,
                           order_by: Sequence[str] | None = None,
                           page_token: str | None = None) -> PagedList[Experiment]: ...

    @abstractmethod
    def delete_experiment(self, experiment_id: str) -> None: ...

    @abstractmethod
    def restore_experiment(self, experiment_id: str) -> None: ...

    @abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...

    # -- runs ------------------------------------------------------------------------

    @abstractmethod
    def create_run(self, experiment_id: str, user_id: str, start_time: int,
                   tags: Sequence[RunTag] = (), run_name: str | None = None) -> Run:
        """A RUNNING run; a name is generated when none is given."""

    @abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    @abstractmethod
    def update_run_info(self, run_id: str, status: str | None = None,
                        end_time: int | None = None, run_name: str | None = None) -> Run: ...

    @abstractmethod
    def finish_run(self, run_id: str, status: str, end_time: int,
                   metrics: Sequence[Metric] = ()) -> None:
        """A run's last metrics and its end in one transaction (nothing read back)."""

    @abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Soft delete (lifecycle_stage = deleted); ConflictError if a registered model
        version references the run — deleting it would break that version's lineage."""

    @abstractmethod
    def delete_runs(self, run_ids: Sequence[str]) -> list[str]:
        """Soft delete many runs in one transaction, but those a registered version
        references: their ids are returned, those runs left as they were. Unknown ids
        are a NotFoundError, and then nothing is deleted."""

    @abstractmethod
    def restore_run(self, run_id: str) -> None: ...

    @abstractmethod
    def log_batch(self, run_id: str, metrics: Sequence[Metric] = (),
                  params: Sequence[Param] = (), tags: Sequence[RunTag] = ()) -> None:
        """The one write path for run data, many rows in one transaction. Params are
        write-once: logging a different value for a logged key is a ConflictError."""

    @abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None: ...

    @abstractmethod
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every logged value of `key`, by step then timestamp."""

    @abstractmethod
    def search_runs(self, experiment_ids: Sequence[str], filter_string: str = "",
                    run_view_type: str = ACTIVE_ONLY, max_results: int = 1000,
                    order_by: Sequence[str] | None = None,
                    page_token: str | None = None) -> PagedList[Run]:
        """MLflow's filter syntax (metrics.x > 1 AND params.p = 'v' AND tags.t LIKE 'a%'
        AND attributes.status = 'FINISHED'), plus OR and parentheses."""

    @abstractmethod
    def log_artifacts(self, run_id: str, artifacts: Sequence[Artifact]) -> None:
        """Record paths of the run's artifact tree (replacing entries at the same path)."""

    @abstractmethod
    def replace_artifacts(self, run_id: str, path: str, artifacts: Sequence[Artifact]) -> int:
        """Remove the records at `path` and below, then record `artifacts` (at or below
        `path`: the rewritten directory), in one transaction; how many were removed.
        NotFoundError if the run has nothing at `path`."""

    @abstractmethod
    def list_artifacts(self, run_id: str, path: str | None = None) -> list[Artifact]:
        """Entries at `path` and below (all of them when None)."""

    # -- registered models -----------------------------------------------------------

    @abstractmethod
    def create_registered_model(self, name: str, tags: dict[str, str] | None = None,
                                description: str = "", user_id: str = "") -> RegisteredModel:
        """A new model; its creator (`user_id`) holds MANAGE on it."""

    @abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel: ...

    @abstractmethod
    def search_registered_models(self, filter_string: str = "", max_results: int = 100,
                                 order_by: Sequence[str] | None = None,
                                 page_token: str | None = None
                                 ) -> PagedList[RegisteredModel]: ...

    @abstractmethod
    def update_registered_model(self, name: str, description: str) -> RegisteredModel: ...

    @abstractmethod
    def rename_registered_model(self, name: str, new_name: str,
                                user_id: str = "") -> RegisteredModel: ...

    @abstractmethod
    def delete_registered_model(self, name: str, user_id: str = "") -> None: ...

    @abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str) -> None: ...

    @abstractmethod
    def delete_registered_model_tag(self, name: str, key: str) -> None: ...

    # -- model versions --------------------------------------------------------------

    @abstractmethod
    def create_model_version(self, name: str, source: str, digest: str,
                             run_id: str | None = None, tags: dict[str, str] | None = None,
                             description: str = "", user_id: str = "") -> ModelVersion:
        """Version N+1 of `name` (created if absent), with an audit entry. Concurrent
        callers get distinct consecutive numbers: no gap, no duplicate."""

    @abstractmethod
    def get_model_version(self, name: str, version: int) -> ModelVersion: ...

    @abstractmethod
    def update_model_version(self, name: str, version: int, description: str,
                             user_id: str = "") -> ModelVersion:
        ...

    @abstractmethod
    def delete_model_version(self, name: str, version: int, user_id: str = "") -> None: ...

    @abstractmethod
    def apply_stage_change(self, change: StageChange) -> StageChangeResult:
        """Apply a promotion the registry planned, in one transaction: the version's new
        stage and its audit row; with `change.archive_others_to`, every other version
        then in that stage moves there, each with its audit row — so exactly one holds
        the stage even under concurrent calls. Stage names are stored as given: the
        vocabulary and its rules are the registry's (`cairn.registry.stages`)."""

    @abstractmethod
    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None
                            ) -> list[ModelVersion]:
        """The newest version in each of `stages`, in that order (each stage that has
        one, newest version first, if None)."""

    @abstractmethod
    def get_stage_holders(self, name: str, stage: str) -> tuple[int, ...]:
        """The version numbers in `stage`, ascending (one indexed query: the gates ask
        it on every promotion)."""

    @abstractmethod
    def search_model_versions(self, filter_string: str = "", max_results: int = 10000,
                              order_by: Sequence[str] | None = None,
                              page_token: str | None = None) -> PagedList[ModelVersion]:
        """name, version, run_id, source, tags.x, and beyond MLflow: current_stage (in any
        case) and alias (`alias = 'champion'`), with OR and parentheses."""

    @abstractmethod
    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None: ...

    @abstractmethod
    def delete_model_version_tag(self, name: str, version: int, key: str) -> None: ...

    @abstractmethod
    def apply_alias_move(self, move: AliasMove) -> AuditEntry:
        """Point an alias at a version, or delete it (`move.version` None), with its
        audit row; ConflictError if `move.expected` no longer holds."""

    def set_registered_model_alias(self, name: str, alias: str, version: int,
                                   user_id: str = "") -> None:
        self.apply_alias_move(AliasMove(name, alias, version, user_id))

    def delete_registered_model_alias(self, name: str, alias: str, user_id: str = "") -> None:
        self.apply_alias_move(AliasMove(name, alias, None, user_id))

    @abstractmethod
    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion: ...

    @abstractmethod
    def get_audit_log(self, name: str, version: int | None = None) -> list[AuditEntry]:
        """Every change to `name` (or one version), oldest first."""

    @abstractmethod
    def add_audit_entry(self, name: str, version: int | None, action: str, user_id: str = "",
                        reason: str = "", details: dict[str, object] | None = None,
                        to_value: str | None = None) -> AuditEntry:
        """Record an event that changes nothing else (a reproduction, a refused gate)."""

    # -- governance: gate policies, permissions, promotion requests --------------------

    @abstractmethod
    def set_gate_policy(self, name: str, source: str, document: dict[str, object],
                        user_id: str = "") -> GatePolicy:
        """Store the next policy version of `name` (validated by the registry), with an
        audit row; every earlier version is kept."""

    @abstractmethod
    def get_gate_policy(self, name: str, policy_version: int | None = None
                        ) -> GatePolicy | None:
        """The policy in force (the newest), or `policy_version`; None if none was set."""

    @abstractmethod
    def get_permissions(self, name: str) -> dict[str, str]:
        """user id ("*": everyone else) → READ, EDIT or MANAGE, as recorded for `name`."""

    @abstractmethod
    def set_permission(self, name: str, user_id: str, level: str | None,
                       granted_by: str = "") -> None:
        """Grant `level` to `user_id` on `name` (None revokes), with an audit row."""

    @abstractmethod
    def create_promotion_request(self, name: str, version: int, target: str,
                                 archive_existing: bool = False, user_id: str = "",
                                 reason: str = "", details: dict[str, object] | None = None
                                 ) -> PromotionRequest:
        """Open a request to move `version` to `target` (a stage, or "@alias")."""

    @abstractmethod
    def get_promotion_request(self, request_id: int) -> PromotionRequest: ...

    @abstractmethod
    def search_promotion_requests(self, name: str | None = None, state: str | None = None
                                  ) -> list[PromotionRequest]:
        """Requests, newest first, of one model or all, in one state or any."""

    @abstractmethod
    def decide_promotion_request(self, decision: Decision) -> DecisionResult:
        """Approve or reject, in one transaction: refused (ConflictError) unless the
        request is open and its version is still in the stage it was opened from; an
        approval reaching `decision.required` applies `decision.change` — so two racing
        approvals make one transition."""

    # -- webhooks: endpoints told of registry events, and the outbox of deliveries ------
    # A delivery is queued in the transaction of the change it reports (exactly when that
    # change commits); sending is the registry's (`cairn.registry.webhooks`), afterwards.

    @abstractmethod
    def create_webhook(self, url: str, events: Sequence[str] | None, secret_env: str,
                       name: str | None = None, user_id: str = "") -> Webhook:
        """A hook on model `name` (every model if None) for `events` (all if empty or
        None). UserError for a URL that is not http(s), an unknown event, or a
        `secret_env` that is not an environment variable name; NotFoundError for an
        unknown model."""

    @abstractmethod
    def list_webhooks(self, name: str | None = None) -> list[Webhook]:
        """Every hook, oldest first; with `name`, the hooks that hear of that model (its
        own and the global ones)."""

    @abstractmethod
    def delete_webhook(self, webhook_id: int, user_id: str = "") -> None:
        """Remove a hook and its deliveries (those not sent yet are never sent)."""

    @abstractmethod
    def search_webhook_deliveries(self, webhook_id: int | None = None,
                                  name: str | None = None, state: str | None = None,
                                  limit: int = 100) -> list[WebhookDelivery]:
        """Deliveries newest first: of one hook, of the hooks on model `name`, in one
        state (pending, sending, delivered, failed) or any."""

    @abstractmethod
    def claim_due_deliveries(self, now: int, limit: int, lease_ms: int
                             ) -> list[WebhookDelivery]:
        """Move up to `limit` deliveries that are due at `now` — pending ones, and sending
        ones whose lease ended (their worker died) — to sending, leased until
        `now + lease_ms`, and return them. Concurrent callers never get the same one."""

    @abstractmethod
    def record_delivery_attempt(self, delivery_id: int, ok: bool, status: int | None,
                                error: str, next_attempt: int | None,
                                now: int | None = None) -> None:
        """The outcome of sending a claimed delivery: delivered if `ok`; else pending
        again until `next_attempt`, or failed for good when that is None. Ignored for a
        delivery no longer being sent (its hook was removed)."""

    @abstractmethod
    def has_due_deliveries(self, now: int) -> bool:
        """Whether any delivery is due at `now` (one indexed query: it runs after every
        registry change)."""

    @abstractmethod
    def referenced_digests(self, excluding_runs: Sequence[str] = (),
                           excluding_versions: Sequence[tuple[str, int]] = ()) -> set[str]:
        """Digests of every registered model version and every artifact of runs that are
        not deleted: what retention and gc must never delete. `excluding_runs`: as if
        those runs were deleted (retention's question before it deletes them);
        `excluding_versions` (model name, version): as if those versions were not
        registered (tiering's question: what else names an Archived version's objects)."""

    @abstractmethod
    def digests_of_runs(self, run_ids: Sequence[str]) -> dict[str, bool]:
        """Every digest the artifacts of these runs (deleted or not) name → whether it is
        a directory manifest: what retention would delete, in one question."""

    # -- model packages: the immutable files built from versions -----------------------

    @abstractmethod
    def record_package(self, name: str, version: int, digest: str, object_id: str,
                       size: int, user_id: str = "") -> PackageRecord:
        """Record a package built from `version` (once per digest: recording the same
        digest again returns the first record); NotFoundError for an unknown version."""

    @abstractmethod
    def list_packages(self, name: str | None = None, version: int | None = None
                      ) -> list[PackageRecord]:
        """Packages of one version, of one model, or all (for liveness), oldest first."""

    def close(self) -> None:  # noqa: B027 - optional: a no-op by default
        """Release connections (a no-op where there are none)."""
