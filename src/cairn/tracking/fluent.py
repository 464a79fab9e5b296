"""The tracking API with MLflow's names: `start_run`, `log_metric`, `log_artifact`, ….

There is one active-run stack per process. Params and tags are written at once (a
param logged twice with another value fails right there); metrics wait in a buffer
(tracking/buffer.py) written every `tracking.flush_interval` seconds (default 1 s),
at `flush()`, at `end_run()` and at interpreter exit.
"""

from __future__ import annotations

import atexit
import json
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from cairn.errors import UserError
from cairn.identity import current_user
from cairn.store.base import DEFAULT_EXPERIMENT_ID
from cairn.store.entities import DELETED, Experiment, Metric, Param, Run, RunTag
from cairn.tracking import artifacts, lineage
from cairn.tracking.backend import (
    Backend,
    all_backends,
    backend,
    drop_after_fork,
    forget_backends,
)
from cairn.tracking.backend import get_tracking_uri as get_tracking_uri
from cairn.tracking.backend import set_tracking_uri as set_tracking_uri

ENV_EXPERIMENT_NAME = "CAIRN_EXPERIMENT_NAME"
ENV_EXPERIMENT_ID = "CAIRN_EXPERIMENT_ID"
ENV_RUN_ID = "CAIRN_RUN_ID"
MLFLOW_PARENT_RUN_TAG = "mlflow.parentRunId"

_state_lock = threading.RLock()
_active: list[ActiveRun] = []
_experiment_id: str | None = None
_last_run_id: str | None = None


class ActiveRun:
    """The run `start_run` returned: `.info`, `.data` like a Run, and a context manager
    that ends it FINISHED, or FAILED if the block raised (KILLED on Ctrl-C)."""

    def __init__(self, run: Run, backend: Backend) -> None:
        self._run = run
        self._backend = backend

    @property
    def info(self) -> Any:
        return self._run.info

    @property
    def data(self) -> Any:
        return self._run.data

    def __repr__(self) -> str:
        return f"<ActiveRun: run_id={self.info.run_id!r}, run_name={self.info.run_name!r}>"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        status = ("FINISHED" if exc_type is None else
                  "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")
        _end(self, status)


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- experiments -----------------------------------------------------------------------

def set_experiment(experiment_name: str | None = None,
                   experiment_id: str | None = None) -> Experiment:
    """Make an experiment the active one, creating it by name if it does not exist."""
    global _experiment_id
    store = backend().store
    if experiment_id is not None:
        experiment = store.get_experiment(str(experiment_id))
    elif experiment_name:
        found = store.get_experiment_by_name(experiment_name)
        experiment = found or store.get_experiment(store.create_experiment(experiment_name))
    else:
        raise UserError("set_experiment needs an experiment_name or an experiment_id")
    if experiment.lifecycle_stage == DELETED:
        raise UserError(f"experiment {experiment.name!r} is deleted; restore it or pick "
                        "another name")
    _experiment_id = experiment.experiment_id
    return experiment


def _current_experiment_id(b: Backend) -> str:
    if _experiment_id is not None:
        return _experiment_id
    name = os.environ.get(ENV_EXPERIMENT_NAME)
    if name:
        return set_experiment(name).experiment_id
    return os.environ.get(ENV_EXPERIMENT_ID) or DEFAULT_EXPERIMENT_ID


# -- runs ------------------------------------------------------------------------------

def start_run(run_id: str | None = None, experiment_id: str | None = None,
              run_name: str | None = None, nested: bool = False,
              tags: Mapping[str, Any] | None = None,
              description: str | None = None) -> ActiveRun:
    """Start a run (or resume `run_id`) and make it the active one."""
    b = backend()
    with _state_lock:
        if _active and not nested:
            raise UserError(f"run {_active[-1].info.run_id} is already active; end it with "
                            "cairn.end_run() first, or pass nested=True for a child run")
        run_id = run_id or os.environ.get(ENV_RUN_ID)
        if run_id:
            run = _resume(b, run_id)
        else:
            run = _create(b, experiment_id, run_name, tags, description,
                          _active[-1] if _active else None)
        active = ActiveRun(run, b)
        _active.append(active)
        _register_exit_hook()
    return active


def _create(b: Backend, experiment_id: str | None, run_name: str | None,
            tags: Mapping[str, Any] | None, description: str | None,
            parent: ActiveRun | None) -> Run:
    exp_id = str(experiment_id) if experiment_id is not None else _current_experiment_id(b)
    if parent is not None:  # a child shares its parent's code, data and environment
        all_tags = {k: v for k, v in parent.data.tags.items() if k.startswith("cairn.")
                    and k != lineage.PARENT_RUN_TAG}
        all_tags[lineage.PARENT_RUN_TAG] = parent.info.run_id
        # code ported from MLflow finds a parent's children by MLflow's tag
        all_tags[MLFLOW_PARENT_RUN_TAG] = parent.info.run_id
    else:
        all_tags = lineage.capture(b.root)
    all_tags.update({str(k): str(v) for k, v in (tags or {}).items()})
    if description:
        all_tags["cairn.note.content"] = description
    run_tags = [RunTag(k, v) for k, v in sorted(all_tags.items())]
    return b.store.create_run(exp_id, current_user(), _now_ms(), run_tags, run_name)


def _resume(b: Backend, run_id: str) -> Run:
    run = b.store.get_run(run_id)
    if run.info.lifecycle_stage == DELETED:
        raise UserError(f"run {run_id} is deleted; `cairn runs restore {run_id}` first")
    if run.info.status != "RUNNING":
        b.store.update_run_info(run_id, status="RUNNING")
    return b.store.get_run(run_id)


def active_run() -> ActiveRun | None:
    with _state_lock:
        return _active[-1] if _active else None


def last_active_run() -> Run | None:
    """The run that is active, else the one that ended last (as MLflow has it)."""
    current = active_run()
    if current is not None:
        return backend().store.get_run(current.info.run_id)
    return backend().store.get_run(_last_run_id) if _last_run_id else None


def end_run(status: str = "FINISHED") -> None:
    """End the active run (flushing its metrics first); nothing happens if none is."""
    current = active_run()
    if current is not None:
        _end(current, status)


def _end(run: ActiveRun, status: str) -> None:
    global _last_run_id
    with _state_lock:
        if run not in _active:
            return  # already ended
        while _active and _active[-1] is not run:  # children left open end with it
            _finish(_active.pop(), status)
        _active.pop()
    _finish(run, status)
    _last_run_id = run.info.run_id


def _finish(run: ActiveRun, status: str) -> None:
    """Write the run's waiting metrics and its end in one transaction, without reading
    the run back. The end is recorded even when the metrics are refused (the error is
    raised after)."""
    b, run_id, end_time = run._backend, run.info.run_id, _now_ms()
    ended = False

    def write_end(metrics: list[Metric]) -> None:
        nonlocal ended
        b.store.finish_run(run_id, status, end_time, metrics)
        ended = True

    try:
        b.buffer.flush(last=(run_id, write_end))
    finally:
        if not ended:
            b.store.finish_run(run_id, status, end_time)


def _get_or_start_run() -> ActiveRun:
    return active_run() or start_run()


# -- params, metrics, tags -------------------------------------------------------------

def log_param(key: str, value: Any) -> Any:
    log_params({key: value})
    return value


def log_params(params: Mapping[str, Any]) -> None:
    run = _get_or_start_run()
    rows = [Param(str(k), _param_value(v)) for k, v in params.items()]
    run._backend.store.log_batch(run.info.run_id, params=rows)


def _param_value(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def log_metric(key: str, value: float, step: int | None = None,
               timestamp: int | None = None) -> None:
    run = _get_or_start_run()
    metric = Metric(str(key), _metric_value(key, value), timestamp or _now_ms(), int(step or 0))
    run._backend.buffer.add(run.info.run_id, (metric,))


def log_metrics(metrics: Mapping[str, float], step: int | None = None,
                timestamp: int | None = None) -> None:
    run = _get_or_start_run()
    ts, st = timestamp or _now_ms(), int(step or 0)
    rows = [Metric(str(k), _metric_value(k, v), ts, st) for k, v in metrics.items()]
    run._backend.buffer.add(run.info.run_id, rows)


def _metric_value(key: object, value: object) -> float:
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        raise UserError(f"metric {key!r} must be a number, not {type(value).__name__} "
                        f"({value!r}); log text with set_tag or log_param")
    return float(value)


def set_tag(key: str, value: Any) -> None:
    set_tags({key: value})


def set_tags(tags: Mapping[str, Any]) -> None:
    run = _get_or_start_run()
    rows = [RunTag(str(k), str(v)) for k, v in tags.items()]
    run._backend.store.log_batch(run.info.run_id, tags=rows)


def delete_tag(key: str) -> None:
    run = _get_or_start_run()
    run._backend.store.delete_tag(run.info.run_id, key)


def flush() -> None:
    """Write every buffered metric of this process now; on return they are on disk."""
    for b in all_backends():
        if b._buffer is not None:
            b._buffer.flush()


# -- artifacts -------------------------------------------------------------------------

def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    run = _get_or_start_run()
    artifacts.log_path(run._backend, run.info.run_id, local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    """Log the contents of `local_dir` under `artifact_path` (the run's root if None)."""
    run = _get_or_start_run()
    artifacts.log_path(run._backend, run.info.run_id, local_dir, artifact_path,
                       contents_only=True)


def log_dict(dictionary: Any, artifact_file: str) -> None:
    """Save `dictionary` as JSON, or YAML when `artifact_file` ends in .yaml/.yml."""
    if artifact_file.endswith((".yaml", ".yml")):
        from cairn import yamlfile

        text = yamlfile.dump(dictionary, default_flow_style=False)
    else:
        text = json.dumps(dictionary, indent=2)
    log_text(text, artifact_file)


def log_text(text: str, artifact_file: str) -> None:
    path = artifacts.clean_artifact_path(artifact_file)
    if not path:
        raise UserError("log_text/log_dict need an artifact file name, e.g. 'config.json'")
    directory, _, name = path.rpartition("/")
    with tempfile.TemporaryDirectory(prefix="cairn-log-") as tmp:
        local = Path(tmp) / name
        local.write_text(text, encoding="utf-8")
        log_artifact(local, directory or None)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    run = _get_or_start_run()
    path = artifacts.clean_artifact_path(artifact_path)
    return f"runs:/{run.info.run_id}/{path}" if path else f"runs:/{run.info.run_id}"


def get_run(run_id: str) -> Run:
    return backend().store.get_run(run_id)


# -- process lifetime ------------------------------------------------------------------

_hook_registered = False


def search_runs(experiment_ids: list[str] | None = None, filter_string: str = "",
                run_view_type: int | str = "ACTIVE_ONLY", max_results: int = 100000,
                order_by: list[str] | None = None, output_format: str = "pandas",
                search_all_experiments: bool = False,
                experiment_names: list[str] | None = None) -> Any:
    """MLflow's fluent search: a pandas DataFrame (one row per run; columns run_id,
    experiment_id, status, artifact_uri, start_time, end_time, metrics.*, params.*,
    tags.*), or with output_format="list" the Run objects. Without experiments named,
    the current experiment (every one with search_all_experiments)."""
    from cairn.store.base import as_view_type

    if output_format not in ("pandas", "list"):
        raise UserError(f"output_format must be 'pandas' or 'list', not {output_format!r}")
    b = backend()
    ids = [str(i) for i in experiment_ids or []]
    for name in experiment_names or []:
        found = b.store.get_experiment_by_name(name)
        if found is None:
            raise UserError(f"no experiment named {name!r}; see `cairn experiments list`")
        ids.append(found.experiment_id)
    if search_all_experiments and not ids:
        ids = [e.experiment_id for e in b.store.search_experiments(max_results=50000)]
    elif not ids:
        ids = [_current_experiment_id(b)]
    runs: list[Run] = []
    token: str | None = None
    while len(runs) < max_results:
        page = b.store.search_runs(ids, filter_string, as_view_type(run_view_type),
                                   min(1000, max_results - len(runs)), order_by, token)
        runs.extend(page)
        token = page.token
        if token is None:
            break
    return runs if output_format == "list" else _runs_frame(runs)


def _runs_frame(runs: list[Run]) -> Any:
    import pandas as pd

    rows = []
    for run in runs:
        info = run.info
        row: dict[str, Any] = {
            "run_id": info.run_id, "experiment_id": info.experiment_id,
            "status": info.status, "artifact_uri": info.artifact_uri,
            "start_time": pd.to_datetime(info.start_time, unit="ms", utc=True),
            "end_time": (pd.to_datetime(info.end_time, unit="ms", utc=True)
                         if info.end_time else None)}
        row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        rows.append(row)
    columns = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    return pd.DataFrame(rows, columns=None if rows else columns)


def _register_exit_hook() -> None:
    global _hook_registered
    if not _hook_registered:
        atexit.register(_at_exit)
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _hook_registered = True


def _at_exit() -> None:
    """Runs left open end FINISHED (MLflow does the same); every metric is written."""
    while True:
        current = active_run()
        if current is None:
            break
        try:
            _end(current, "FINISHED")
        except Exception:  # a store gone at exit must not hide the program's own outcome
            with _state_lock:
                if _active and _active[-1] is current:
                    _active.pop()
    for b in all_backends():
        if b._buffer is not None:
            b._buffer.close()


def _after_fork_in_child() -> None:
    # The parent owns its runs, buffered rows and connections; a child starts its own.
    global _active
    _active = []
    for b in all_backends():
        if b._buffer is not None:
            b._buffer.reset_after_fork()
    drop_after_fork()


def _reset_for_tests() -> None:
    global _experiment_id, _last_run_id
    with _state_lock:
        _active.clear()
    _experiment_id = None
    _last_run_id = None
    set_tracking_uri(None)
    forget_backends()

