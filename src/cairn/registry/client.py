"""`cairn.Client`: runs, experiments and the model registry, with MlflowClient's names.

Written against `MetadataStore` only, so it behaves the same on SQLite, PostgreSQL and
(later) a Cairn server. Versions may be given as int or str, as MLflow allows; stages
in any case ("production"). Every registered version names an immutable digest.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cairn.errors import ApprovalPending, UserError
from cairn.identity import current_user
from cairn.registry import permissions, promotion, uris
from cairn.registry.gates import GateResult
from cairn.registry.registering import register
from cairn.registry.stages import STAGES, canonical, check_filter
from cairn.store.base import ACTIVE_ONLY, MetadataStore, as_view_type
from cairn.store.entities import (
    Artifact,
    AuditEntry,
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
)
from cairn.tracking import artifacts, lineage
from cairn.tracking.backend import Backend, backend


def version_number(version: int | str) -> int:
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise UserError(f"model version {version!r} is not a number; versions are 1, 2, 3, "
                        "…") from None
    if number < 1:
        raise UserError(f"model version {version!r} is not valid; versions start at 1")
    return number


class Client:
    """The tracking and registry client (MLflow's MlflowClient)."""

    def __init__(self, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        self._uri = tracking_uri or registry_uri

    @property
    def _backend(self) -> Backend:
        return backend(self._uri)

    @property
    def store(self) -> MetadataStore:
        return self._backend.store

    @property
    def tracking_uri(self) -> str:
        return self._backend.uri

    # -- experiments -----------------------------------------------------------------

    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, str] | None = None) -> str:
        return str(self.store.create_experiment(name, artifact_location, tags))

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name)

    def search_experiments(self, view_type: int | str = ACTIVE_ONLY, max_results: int = 1000,
                           filter_string: str | None = None,
                           order_by: Sequence[str] | None = None,
                           page_token: str | None = None) -> PagedList[Experiment]:
        return self.store.search_experiments(
            as_view_type(view_type), max_results, filter_string, order_by, page_token)

    def delete_experiment(self, experiment_id: str) -> None:
        self.store.delete_experiment(str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        self.store.restore_experiment(str(experiment_id))

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self.store.set_experiment_tag(str(experiment_id), key, str(value))

    # -- runs ------------------------------------------------------------------------

    def create_run(self, experiment_id: str, start_time: int | None = None,
                   tags: dict[str, Any] | None = None, run_name: str | None = None) -> Run:
        import time

        b = self._backend
        all_tags = lineage.capture(b.root)
        all_tags.update({k: str(v) for k, v in (tags or {}).items()})
        return b.store.create_run(
            str(experiment_id), current_user(), start_time or int(time.time() * 1000),
            [RunTag(k, v) for k, v in sorted(all_tags.items())], run_name)

    def get_run(self, run_id: str) -> Run:
        return self.store.get_run(run_id)

    def set_terminated(self, run_id: str, status: str = "FINISHED",
                       end_time: int | None = None) -> None:
        import time

        self.store.finish_run(run_id, status, end_time or int(time.time() * 1000))

    def search_runs(self, experiment_ids: Sequence[str] | str, filter_string: str = "",
                    run_view_type: int | str = ACTIVE_ONLY, max_results: int = 1000,
                    order_by: Sequence[str] | None = None,
                    page_token: str | None = None) -> PagedList[Run]:
        ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
        return self.store.search_runs(
            [str(i) for i in ids], filter_string or "", as_view_type(run_view_type), max_results,
            order_by, page_token)

    def delete_run(self, run_id: str) -> None:
        self.store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self.store.restore_run(run_id)

    def log_param(self, run_id: str, key: str, value: Any) -> Any:
        self.store.log_batch(run_id, params=[Param(key, str(value))])
        return value

    def log_metric(self, run_id: str, key: str, value: float, timestamp: int | None = None,
                   step: int | None = None) -> None:
        import time

        ts = timestamp or int(time.time() * 1000)
        self.store.log_batch(run_id, metrics=[Metric(key, float(value), ts, step or 0)])

    def log_batch(self, run_id: str, metrics: Sequence[Metric] = (),
                  params: Sequence[Param] = (), tags: Sequence[RunTag] = ()) -> None:
        self.store.log_batch(run_id, metrics, params, tags)

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.store.log_batch(run_id, tags=[RunTag(key, str(value))])

    def delete_tag(self, run_id: str, key: str) -> None:
        self.store.delete_tag(run_id, key)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self.store.get_metric_history(run_id, key)

    def log_artifact(self, run_id: str, local_path: str | os.PathLike[str],
                     artifact_path: str | None = None) -> None:
        artifacts.log_path(self._backend, run_id, local_path, artifact_path)

    def log_artifacts(self, run_id: str, local_dir: str | os.PathLike[str],
                      artifact_path: str | None = None) -> None:
        artifacts.log_path(self._backend, run_id, local_dir, artifact_path, contents_only=True)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[Artifact]:
        """The entries directly under `path` (the run's root if None), like MLflow."""
        where = artifacts.clean_artifact_path(path)
        return artifacts.children(self.store.list_artifacts(run_id, where or None), where)

    def download_artifacts(self, run_id: str, path: str,
                           dst_path: str | os.PathLike[str] | None = None) -> str:
        """Copy an artifact (verified against its digest) locally; returns its path."""
        return str(artifacts.download(self._backend, run_id, path, dst_path))

    # -- registered models -----------------------------------------------------------

    def create_registered_model(self, name: str, tags: dict[str, Any] | None = None,
                                description: str | None = None) -> RegisteredModel:
        return self.store.create_registered_model(
            name, _str_tags(tags), description or "", current_user())

    def get_registered_model(self, name: str) -> RegisteredModel:
        return uris.get_model(self.store, name)

    def search_registered_models(self, filter_string: str | None = None,
                                 max_results: int = 100,
                                 order_by: Sequence[str] | None = None,
                                 page_token: str | None = None) -> PagedList[RegisteredModel]:
        return self.store.search_registered_models(
            filter_string or "", max_results, order_by, page_token)

    def update_registered_model(self, name: str, description: str | None = None
                                ) -> RegisteredModel:
        return self.store.update_registered_model(
            name, description or "")

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return self.store.rename_registered_model(name, new_name, current_user())

    def delete_registered_model(self, name: str) -> None:
        user = current_user()
        permissions.require(self.store, name, user, "MANAGE", "deleting a model")
        self.store.delete_registered_model(name, user)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self.store.set_registered_model_tag(name, key, str(value))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.store.delete_registered_model_tag(name, key)

    # -- model versions --------------------------------------------------------------

    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: dict[str, Any] | None = None, run_link: str | None = None,
                             description: str | None = None) -> ModelVersion:
        """A new version from `source` (a models:/ or runs:/ URI, a path, a tracked file)."""
        return register(self._backend, source, name, _str_tags(tags), description or "",
                        run_id)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return uris.get_version(self.store, name, version_number(version))

    def update_model_version(self, name: str, version: int | str,
                             description: str | None = None) -> ModelVersion:
        if description is None:  # as MLflow: never erase the text by omission
            raise UserError(f"nothing to update on model '{name}' version {version}: "
                            "pass description=\"...\" (\"\" clears it)")
        return self.store.update_model_version(
            name, version_number(version), description, current_user())

    def delete_model_version(self, name: str, version: int | str) -> None:
        user = current_user()
        permissions.require(self.store, name, user, "MANAGE", "deleting a version")
        self.store.delete_model_version(name, version_number(version), user)

    def transition_model_version_stage(self, name: str, version: int | str, stage: str,
                                       archive_existing_versions: bool = False,
                                       reason: str = "", *, force: bool = False
                                       ) -> ModelVersion:
        """Move a version to a stage, with an audit entry; with `archive_existing_versions`,
        every other version in that stage is archived in the same transaction.

        The model's gates decide first: GateRefused (with every verdict) if they say
        no; ApprovalPending (carrying the request it opened) if they want approvers.
        `force` (MANAGE only) skips them, recorded as forced."""
        done = promotion.promote(self._backend, name, version_number(version), stage,
                                 archive_existing=archive_existing_versions, reason=reason,
                                 force=force)
        if done.moved is None:
            raise _pending(done)
        return done.moved.version

    def request_model_version_stage(self, name: str, version: int | str, stage: str,
                                    archive_existing_versions: bool = False,
                                    reason: str = "") -> PromotionRequest:
        """Open a promotion request (the gates must pass) for a MANAGE holder to approve."""
        done = promotion.promote(self._backend, name, version_number(version), stage,
                                 archive_existing=archive_existing_versions, reason=reason,
                                 request=True)
        assert done.request is not None
        return done.request

    def check_gates(self, name: str, version: int | str, stage: str = "Production"
                    ) -> GateResult:
        """The gates' verdict on `version` entering `stage` (or "@alias"), not promoting."""
        return promotion.check(self._backend, name, version_number(version), stage)

    def set_gate_policy(self, name: str, policy: str | os.PathLike[str]) -> GatePolicy:
        """Set the model's gate policy from YAML text or a YAML file (a new version)."""
        if isinstance(policy, os.PathLike) or (isinstance(policy, str) and "\n" not in policy
                                               and Path(policy).is_file()):
            path = Path(policy)
            return promotion.set_policy(self.store, name, path.read_text(), str(path))
        return promotion.set_policy(self.store, name, str(policy), "<policy>")

    def get_gate_policy(self, name: str, policy_version: int | None = None
                        ) -> GatePolicy | None:
        return self.store.get_gate_policy(name, policy_version)

    def search_promotion_requests(self, name: str | None = None, state: str | None = None
                                  ) -> list[PromotionRequest]:
        return promotion.requests(self.store, name, state)

    def get_promotion_request(self, request_id: int) -> PromotionRequest:
        return self.store.get_promotion_request(request_id)

    def approve_promotion_request(self, request_id: int, comment: str = "") -> DecisionResult:
        return promotion.approve(self._backend, request_id, comment=comment)

    def reject_promotion_request(self, request_id: int, comment: str) -> DecisionResult:
        return promotion.reject(self._backend, request_id, comment=comment)

    def get_permissions(self, name: str) -> dict[str, str]:
        return self.store.get_permissions(name)

    def set_permission(self, name: str, user: str, level: str | None) -> None:
        """Grant READ, EDIT or MANAGE on `name` to `user` ("*": everyone else); None
        revokes. Needs MANAGE."""
        promotion.set_permission(self.store, name, user, level, current_user())

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None
                            ) -> list[ModelVersion]:
        wanted = [canonical(s) for s in stages] if stages else STAGES
        uris.get_model(self.store, name)
        return self.store.get_latest_versions(name, wanted)

    def search_model_versions(self, filter_string: str | None = None,
                              max_results: int = 10000,
                              order_by: Sequence[str] | None = None,
                              page_token: str | None = None) -> PagedList[ModelVersion]:
        check_filter(filter_string)
        return self.store.search_model_versions(
            filter_string or "", max_results, order_by, page_token)

    def set_model_version_tag(self, name: str, version: int | str, key: str,
                              value: Any) -> None:
        self.store.set_model_version_tag(name, version_number(version), key, str(value))

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        self.store.delete_model_version_tag(name, version_number(version), key)

    def set_registered_model_alias(self, name: str, alias: str, version: int | str, *,
                                   force: bool = False) -> None:
        """Point `alias` at `version`; an alias the gate policy names is a promotion (its
        rules decide, a protected one moves only for MANAGE)."""
        done = promotion.move_alias(self._backend, name, alias, version_number(version),
                                    force=force)
        if done.alias is None:
            raise _pending(done)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        promotion.delete_alias(self._backend, name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return uris.resolve_version(self.store, uris.ModelsUri(name, alias=alias))

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        return f"models:/{name}/{version_number(version)}"

    def get_audit_log(self, name: str, version: int | str | None = None) -> list[AuditEntry]:
        number = None if version is None else version_number(version)
        return self.store.get_audit_log(name, number)


def _pending(done: promotion.Promotion) -> ApprovalPending:
    req = done.request
    assert req is not None
    return ApprovalPending(
        f"model '{done.name}' version {done.version} passed its gates for "
        f"{req.target}, which also need {done.gates.approvals_required} approval(s): "
        f"request {req.id} is open (`cairn models approve {req.id}`)", req)


def _str_tags(tags: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (tags or {}).items()}


def register_model(model_uri: str | os.PathLike[str], name: str,
                   tags: dict[str, Any] | None = None) -> ModelVersion:
    """Register `model_uri` (runs:/<id>/<path>, models:/…, a local path or a Cairn-tracked
    file) as the next version of `name`, creating the model if needed."""
    if isinstance(model_uri, Path):
        model_uri = str(model_uri)
    return register(backend(), str(model_uri), name, _str_tags(tags))
