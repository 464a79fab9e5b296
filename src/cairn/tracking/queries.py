"""What `cairn runs` and `cairn experiments` show, as plain data (the CLI only renders)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from cairn.errors import NotFoundError
from cairn.store.base import ACTIVE_ONLY, DELETED_ONLY, MetadataStore
from cairn.store.entities import Experiment, Run
from cairn.tracking.lineage import PREFIX, json_tag


def experiments_named(store: MetadataStore, names: Sequence[str]) -> dict[str, Experiment]:
    """id → experiment for `names` (every active experiment when empty)."""
    if not names:
        return {e.experiment_id: e for e in store.search_experiments(ACTIVE_ONLY, 10000)}
    found: dict[str, Experiment] = {}
    for name in names:
        experiment = store.get_experiment_by_name(name)
        if experiment is None:
            known = ", ".join(e.name for e in store.search_experiments(ACTIVE_ONLY, 50))
            raise NotFoundError(f"no experiment named {name!r}; experiments: {known or 'none'}")
        found[experiment.experiment_id] = experiment
    return found


def search_runs(store: MetadataStore, experiment_ids: list[str], filter_string: str,
                order_by: Sequence[str], max_results: int, deleted: bool) -> list[Run]:
    if not experiment_ids:
        return []
    return list(store.search_runs(experiment_ids, filter_string,
                                  DELETED_ONLY if deleted else ACTIVE_ONLY, max_results,
                                  list(order_by) or None))


def run_details(store: MetadataStore, run_id: str) -> dict[str, Any]:
    run = store.get_run(run_id)
    try:
        experiment: str | None = store.get_experiment(run.info.experiment_id).name
    except NotFoundError:
        experiment = None
    tags = run.data.tags
    return {
        "info": asdict(run.info),
        "experiment": experiment,
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": {k: v for k, v in tags.items() if not k.startswith(PREFIX)},
        "lineage": {k[len(PREFIX):]: _decoded(tags, k) for k in tags if k.startswith(PREFIX)},
        "artifacts": [asdict(a) for a in store.list_artifacts(run_id)],
    }


def _decoded(tags: dict[str, str], key: str) -> Any:
    value = json_tag(tags, key)
    return tags[key] if value is None or isinstance(value, (int, float, bool)) else value


def compare_runs(store: MetadataStore, run_ids: Sequence[str]) -> dict[str, Any]:
    """Params and metrics of several runs, key by key (None where a run lacks the key)."""
    found = [store.get_run(run_id) for run_id in run_ids]
    params = sorted({k for r in found for k in r.data.params})
    metrics = sorted({k for r in found for k in r.data.metrics})
    return {
        "runs": [{"run_id": r.info.run_id, "run_name": r.info.run_name,
                  "status": r.info.status} for r in found],
        "params": {k: [r.data.params.get(k) for r in found] for k in params},
        "metrics": {k: [r.data.metrics.get(k) for r in found] for k in metrics},
    }
