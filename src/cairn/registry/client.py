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

from cairn.errors import UserError
from cairn.registry import uris
from cairn.registry.registering import register
from cairn.registry.stages import STAGES, canonical, check_filter, transition
from cairn.store.base import ACTIVE_ONLY, MetadataStore, as_view_type
from cairn.store.entities import (
    Artifact,
    AuditEntry,
    Experiment,
    Metric,
    ModelVersion,
    PagedList,
    Param,
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
            str(experiment_id), lineage.current_user(), start_time or int(time.time() * 1000),
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
            name, _str_tags(tags), description or "")

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
        return self.store.rename_registered_model(name, new_name, lineage.current_user())

    def delete_registered_model(self, name: str) -> None:
        self.store.delete_registered_model(name, lineage.current_user())

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
            name, version_number(version), description, lineage.current_user())

    def delete_model_version(self, name: str, version: int | str) -> None:
        self.store.delete_model_version(name, version_number(version), lineage.current_user())

    def transition_model_version_stage(self, name: str, version: int | str, stage: str,
                                       archive_existing_versions: bool = False,
                                       reason: str = "") -> ModelVersion:
        """Move a version to a stage, with an audit entry; with `archive_existing_versions`,
        every other version in that stage is archived in the same transaction."""
        return transition(
            self.store, name, version_number(version), stage,
            archive_existing=archive_existing_versions, user_id=lineage.current_user(),
            reason=reason).version

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

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        self.store.set_registered_model_alias(name, alias, version_number(version),
                                              lineage.current_user())

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.store.delete_registered_model_alias(name, alias, lineage.current_user())

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return uris.resolve_version(self.store, uris.ModelsUri(name, alias=alias))

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        return f"models:/{name}/{version_number(version)}"

    def get_audit_log(self, name: str, version: int | str | None = None) -> list[AuditEntry]:
        number = None if version is None else version_number(version)
        return self.store.get_audit_log(name, number)


def _str_tags(tags: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (tags or {}).items()}


def register_model(model_uri: str | os.PathLike[str], name: str,
                   tags: dict[str, Any] | None = None) -> ModelVersion:
    """Register `model_uri` (runs:/<id>/<path>, models:/…, a local path or a Cairn-tracked
    file) as the next version of `name`, creating the model if needed."""
    if isinstance(model_uri, Path):
        model_uri = str(model_uri)
    return register(backend(), str(model_uri), name, _str_tags(tags))
