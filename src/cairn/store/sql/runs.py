"""Experiments and runs in the SQL store (SQLite or PostgreSQL)."""

from __future__ import annotations

import math
import posixpath
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    or_,
    select,
)

from cairn.errors import ConflictError, NotFoundError, UserError
from cairn.store.base import ACTIVE_ONLY, ALL, DELETED_ONLY, MetadataStore, checked_metric
from cairn.store.entities import (
    ACTIVE,
    DELETED,
    RUN_STATUSES,
    Artifact,
    Experiment,
    Metric,
    PagedList,
    Param,
    Run,
    RunData,
    RunInfo,
    RunTag,
)
from cairn.store.search import check_max_results
from cairn.store.sql import filters
from cairn.store.sql.common import (
    check_key,
    chunks,
    dialect_insert,
    execute_many,
    like_prefix,
    now_ms,
    page,
    upsert,
)
from cairn.store.sql.common import run_name as generate_run_name
from cairn.store.sql.engine import transaction
from cairn.store.sql.run_search import run_query
from cairn.store.sql.tables import (
    experiment_tags,
    experiments,
    latest_metrics,
    model_versions,
    params,
    registered_models,
    run_artifacts,
    runs,
)
from cairn.store.sql.tables import metrics as metrics_table
from cairn.store.sql.tables import tags as tags_table

MAX_RUNS = 50000
MAX_EXPERIMENTS = 50000
VIEW_TYPES = (ACTIVE_ONLY, DELETED_ONLY, ALL)


class RunStore(MetadataStore):
    """The experiment and run half of SqlStore."""

    _engine: Engine

    # -- experiments -----------------------------------------------------------------

    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, str] | None = None) -> str:
        if not isinstance(name, str) or not name.strip():
            raise UserError(f"invalid experiment name {name!r}: use a non-empty string")
        now = now_ms()
        with transaction(self._engine, write=True) as conn:
            taken = conn.execute(select(experiments.c.experiment_id)
                                 .where(experiments.c.name == name)).scalar()
            if taken is not None:
                raise ConflictError(f"experiment '{name}' already exists (id {taken}); "
                                    "choose another name")
            new_id = conn.execute(experiments.insert().values(
                name=name, artifact_location=artifact_location or "",
                lifecycle_stage=ACTIVE, creation_time=now, last_update_time=now,
            ).returning(experiments.c.experiment_id)).scalar_one()
            if tags:
                conn.execute(experiment_tags.insert(), [
                    {"experiment_id": new_id, "key": check_key("tag", k), "value": str(v)}
                    for k, v in tags.items()])
        return str(new_id)

    def get_experiment(self, experiment_id: str) -> Experiment:
        with transaction(self._engine, write=False) as conn:
            row = _experiment_row(conn, experiment_id)
            return _experiments(conn, [row])[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with transaction(self._engine, write=False) as conn:
            row = conn.execute(select(experiments).where(experiments.c.name == name)).first()
            return None if row is None else _experiments(conn, [row])[0]

    def search_experiments(self, view_type: str = ACTIVE_ONLY, max_results: int = 1000,
                           filter_string: str | None = None,
                           order_by: Sequence[str] | None = None,
                           page_token: str | None = None) -> PagedList[Experiment]:
        check_max_results(max_results, MAX_EXPERIMENTS)
        query = select(experiments).where(_lifecycle(experiments.c.lifecycle_stage, view_type))
        condition = filters.where(filter_string, _EXPERIMENT_TARGET)
        if condition is not None:
            query = query.where(condition)
        ordering = [*filters.order(order_by, _EXPERIMENT_TARGET), experiments.c.experiment_id]
        with transaction(self._engine, write=False) as conn:
            rows, token = page(conn, query.order_by(*ordering), max_results, page_token)
            return PagedList(_experiments(conn, rows), token)

    def delete_experiment(self, experiment_id: str) -> None:
        if str(experiment_id) == "0":
            raise ConflictError("the Default experiment (id 0) cannot be deleted")
        self._set_experiment_stage(experiment_id, DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        self._set_experiment_stage(experiment_id, ACTIVE)

    def _set_experiment_stage(self, experiment_id: str, stage: str) -> None:
        with transaction(self._engine, write=True) as conn:
            row = _experiment_row(conn, experiment_id)
            conn.execute(experiments.update()
                         .where(experiments.c.experiment_id == row.experiment_id)
                         .values(lifecycle_stage=stage, last_update_time=now_ms()))

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        check_key("tag", key)
        with transaction(self._engine, write=True) as conn:
            row = _experiment_row(conn, experiment_id)
            upsert(conn, experiment_tags, [{"experiment_id": row.experiment_id, "key": key,
                                            "value": str(value)}], ["experiment_id", "key"],
                   ["value"])

    # -- runs ------------------------------------------------------------------------

    def create_run(self, experiment_id: str, user_id: str, start_time: int,
                   tags: Sequence[RunTag] = (), run_name: str | None = None) -> Run:
        run_id = uuid.uuid4().hex
        with transaction(self._engine, write=True) as conn:
            experiment = _experiment_row(conn, experiment_id)
            if experiment.lifecycle_stage != ACTIVE:
                raise ConflictError(f"experiment '{experiment.name}' is deleted; restore it "
                                    "before starting runs in it")
            info = RunInfo(run_id, str(experiment.experiment_id),
                           run_name or generate_run_name(), "RUNNING", int(start_time), None,
                           ACTIVE, f"runs:/{run_id}", user_id or "")
            conn.execute(runs.insert(), {
                "run_id": run_id, "experiment_id": experiment.experiment_id,
                "run_name": info.run_name, "user_id": info.user_id, "status": info.status,
                "start_time": info.start_time, "end_time": None, "lifecycle_stage": ACTIVE,
                "artifact_uri": info.artifact_uri})
            # a new run has no tags yet: a plain insert (compiled once) needs no upsert
            execute_many(conn, "insert tags", _tags_insert, _tag_rows(run_id, tags))
        return Run(info, RunData(tags={t.key: str(t.value) for t in tags}))

    def get_run(self, run_id: str) -> Run:
        with transaction(self._engine, write=False) as conn:
            return _load_runs(conn, [_run_row(conn, run_id)])[0]

    def update_run_info(self, run_id: str, status: str | None = None,
                        end_time: int | None = None, run_name: str | None = None) -> Run:
        values = _info_values(status, end_time, run_name)
        with transaction(self._engine, write=True) as conn:
            if values:
                _update_run(conn, run_id, values)
            return _load_runs(conn, [_run_row(conn, run_id)])[0]

    def finish_run(self, run_id: str, status: str, end_time: int,
                   metrics: Sequence[Metric] = ()) -> None:
        """A run's last metrics and its end in one transaction, without reading the run
        back (end_run has no use for it)."""
        values = _info_values(status, end_time, None)
        metric_rows = [_metric_row(run_id, m) for m in metrics]
        with transaction(self._engine, write=True) as conn:
            if metric_rows:
                if _run_row(conn, run_id, for_update=True).lifecycle_stage != ACTIVE:
                    raise ConflictError(f"run {run_id} is deleted; restore it before logging")
                execute_many(conn, "insert metrics", _metrics_insert, metric_rows)
                _update_latest(conn, metric_rows)
            _update_run(conn, run_id, values)

    def delete_run(self, run_id: str) -> None:
        with transaction(self._engine, write=True) as conn:
            _run_row(conn, run_id)
            version = conn.execute(
                select(registered_models.c.name, model_versions.c.version)
                .join(registered_models,
                      registered_models.c.model_id == model_versions.c.model_id)
                .where(model_versions.c.run_id == run_id)
                .order_by(registered_models.c.name, model_versions.c.version)).first()
            if version is not None:
                raise ConflictError(
                    f"run {run_id} is the source of model '{version.name}' version "
                    f"{version.version}; registered versions keep their run (delete the "
                    "version first if it must go)")
            conn.execute(runs.update().where(runs.c.run_id == run_id)
                         .values(lifecycle_stage=DELETED))

    def delete_runs(self, run_ids: Sequence[str]) -> list[str]:
        ids = sorted(set(run_ids))
        refused: set[str] = set()
        with transaction(self._engine, write=True) as conn:
            for chunk in chunks(ids):
                known = set(conn.execute(select(runs.c.run_id)
                                         .where(runs.c.run_id.in_(chunk))).scalars())
                if len(known) < len(chunk):
                    missing = next(i for i in chunk if i not in known)
                    raise NotFoundError(f"run {missing!r} not found")
                refused.update(conn.execute(select(model_versions.c.run_id)
                                            .where(model_versions.c.run_id.in_(chunk)))
                               .scalars())
                conn.execute(runs.update().where(runs.c.run_id.in_(sorted(set(chunk) - refused)))
                             .values(lifecycle_stage=DELETED))
        return sorted(refused)

    def restore_run(self, run_id: str) -> None:
        with transaction(self._engine, write=True) as conn:
            _run_row(conn, run_id)
            conn.execute(runs.update().where(runs.c.run_id == run_id)
                         .values(lifecycle_stage=ACTIVE))

    def log_batch(self, run_id: str, metrics: Sequence[Metric] = (),
                  params: Sequence[Param] = (), tags: Sequence[RunTag] = ()) -> None:
        metric_rows = [_metric_row(run_id, m) for m in metrics]
        param_values = _param_values(params)
        with transaction(self._engine, write=True) as conn:
            run = _run_row(conn, run_id, for_update=True)
            if run.lifecycle_stage != ACTIVE:
                raise ConflictError(f"run {run_id} is deleted; restore it before logging")
            _write_params(conn, run_id, param_values)
            execute_many(conn, "insert metrics", _metrics_insert, metric_rows)
            _update_latest(conn, metric_rows)
            _write_tags(conn, run_id, tags)

    def delete_tag(self, run_id: str, key: str) -> None:
        with transaction(self._engine, write=True) as conn:
            _run_row(conn, run_id)
            deleted = conn.execute(tags_table.delete().where(
                tags_table.c.run_id == run_id, tags_table.c.key == key)).rowcount
            if not deleted:
                raise NotFoundError(f"run {run_id} has no tag '{key}'")

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        m = metrics_table
        with transaction(self._engine, write=False) as conn:
            _run_row(conn, run_id)
            rows = conn.execute(select(m.c.value, m.c.is_nan, m.c.step, m.c.timestamp)
                                .where(m.c.run_id == run_id, m.c.key == key)
                                .order_by(m.c.step, m.c.timestamp, m.c.id)).all()
        return [Metric(key, math.nan if r.is_nan else r.value, r.timestamp, r.step)
                for r in rows]

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str = "",
                    run_view_type: str = ACTIVE_ONLY, max_results: int = 1000,
                    order_by: Sequence[str] | None = None,
                    page_token: str | None = None) -> PagedList[Run]:
        check_max_results(max_results, MAX_RUNS)
        ids = [int(i) for i in experiment_ids if str(i).isdigit()]
        query = run_query(filter_string, order_by, RUN_TARGET).where(
            runs.c.experiment_id.in_(ids), _lifecycle(runs.c.lifecycle_stage, run_view_type))
        with transaction(self._engine, write=False) as conn:
            rows, token = page(conn, query, max_results, page_token)
            return PagedList(_load_runs(conn, rows), token)

    def log_artifacts(self, run_id: str, artifacts: Sequence[Artifact]) -> None:
        rows = [{"run_id": run_id, "path": _artifact_path(a.path), "digest": a.digest,
                 "size": int(a.size), "is_dir": bool(a.is_dir)} for a in artifacts]
        with transaction(self._engine, write=True) as conn:
            _run_row(conn, run_id)
            upsert(conn, run_artifacts, rows, ["run_id", "path"], ["digest", "size", "is_dir"])

    def replace_artifacts(self, run_id: str, path: str, artifacts: Sequence[Artifact]) -> int:
        base = _artifact_path(path)
        rows = [{"run_id": run_id, "path": _artifact_path(a.path), "digest": a.digest,
                 "size": int(a.size), "is_dir": bool(a.is_dir)} for a in artifacts]
        outside = [p for p in (str(r["path"]) for r in rows)
                   if p != base and not p.startswith(base + "/")]
        if outside:
            raise UserError(f"artifact {outside[0]!r} is not inside {base!r}, the directory "
                            "being replaced")
        a = run_artifacts
        at_or_below = and_(a.c.run_id == run_id,
                           or_(a.c.path == base,
                               a.c.path.like(like_prefix(base + "/"), escape="\\")))
        with transaction(self._engine, write=True) as conn:
            _run_row(conn, run_id)
            removed = conn.execute(delete(a).where(at_or_below)).rowcount
            if not removed:
                raise NotFoundError(f"run {run_id} has no artifact {base!r}")
            if rows:
                conn.execute(insert(a), rows)
        return int(removed)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[Artifact]:
        a = run_artifacts
        query = select(a).where(a.c.run_id == run_id).order_by(a.c.path)
        if path:
            base = _artifact_path(path)
            query = query.where(or_(a.c.path == base,
                                    a.c.path.like(like_prefix(base + "/"), escape="\\")))
        with transaction(self._engine, write=False) as conn:
            _run_row(conn, run_id)
            rows = conn.execute(query).all()
        return [Artifact(r.run_id, r.path, r.digest, r.size, r.is_dir) for r in rows]


# -- helpers ------------------------------------------------------------------------

def _lifecycle(column: Any, view_type: str) -> Any:
    if view_type not in VIEW_TYPES:
        raise UserError(f"invalid view type {view_type!r}: use one of {', '.join(VIEW_TYPES)}")
    if view_type == ALL:
        return column.in_([ACTIVE, DELETED])
    return column == (ACTIVE if view_type == ACTIVE_ONLY else DELETED)


def _experiment_row(conn: Connection, experiment_id: str) -> Row[Any]:
    key = str(experiment_id)
    row = None
    if key.isdigit():
        row = conn.execute(select(experiments)
                           .where(experiments.c.experiment_id == int(key))).first()
    if row is None:
        raise NotFoundError(f"experiment '{experiment_id}' does not exist; "
                            "`cairn experiments list` shows the ones that do")
    return row


def _experiments(conn: Connection, rows: Sequence[Row[Any]]) -> list[Experiment]:
    ids = [r.experiment_id for r in rows]
    by_id: dict[int, dict[str, str]] = {i: {} for i in ids}
    for part in chunks(ids):
        for t in conn.execute(select(experiment_tags)
                              .where(experiment_tags.c.experiment_id.in_(part))):
            by_id[t.experiment_id][t.key] = t.value
    return [Experiment(str(r.experiment_id), r.name, r.artifact_location, r.lifecycle_stage,
                       by_id[r.experiment_id], r.creation_time, r.last_update_time)
            for r in rows]


def _info_values(status: str | None, end_time: int | None,
                 run_name: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if status is not None:
        if status not in RUN_STATUSES:
            raise UserError(f"invalid run status {status!r}: use one of "
                            f"{', '.join(RUN_STATUSES)}")
        values["status"] = status
    if end_time is not None:
        values["end_time"] = int(end_time)
    if run_name:
        values["run_name"] = run_name
    return values


def _update_run(conn: Connection, run_id: str, values: dict[str, Any]) -> None:
    updated = conn.execute(runs.update().where(runs.c.run_id == run_id).values(**values))
    if not updated.rowcount:
        raise NotFoundError(f"run '{run_id}' does not exist")


def _run_row(conn: Connection, run_id: str, for_update: bool = False) -> Row[Any]:
    query = select(runs).where(runs.c.run_id == run_id)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    if row is None:
        raise NotFoundError(f"run '{run_id}' does not exist")
    return row


def _load_runs(conn: Connection, rows: Sequence[Row[Any]]) -> list[Run]:
    """Runs with their data, in three queries per chunk of ids (not three per run).

    Rows are fetched all at once and unpacked by position: per-row fetches and attribute
    access cost more than the queries.
    """
    ids = [r.run_id for r in rows]
    data: dict[str, RunData] = {i: RunData() for i in ids}
    lm = latest_metrics
    for part in chunks(ids):
        for run_id, key, value in conn.execute(
                select(params.c.run_id, params.c.key, params.c.value)
                .where(params.c.run_id.in_(part))).all():
            data[run_id].params[key] = value
        for run_id, key, value in conn.execute(
                select(tags_table.c.run_id, tags_table.c.key, tags_table.c.value)
                .where(tags_table.c.run_id.in_(part))).all():
            data[run_id].tags[key] = value
        for run_id, key, value, is_nan in conn.execute(
                select(lm.c.run_id, lm.c.key, lm.c.value, lm.c.is_nan)
                .where(lm.c.run_id.in_(part))).all():
            data[run_id].metrics[key] = math.nan if is_nan else value
    return [Run(RunInfo(run_id, str(experiment_id), run_name, status, start_time, end_time,
                        stage, artifact_uri, user_id), data[run_id])
            for (run_id, experiment_id, run_name, user_id, status, start_time, end_time, stage,
                 artifact_uri) in (_run_columns(r) for r in rows)]


def _run_columns(row: Row[Any]) -> tuple[Any, ...]:
    """A runs row as a tuple in table order (rows may carry joined columns after it)."""
    return tuple(row)[:len(runs.c)]


def _metric_row(run_id: str, metric: Metric) -> dict[str, Any]:
    check_key("metric", metric.key)
    metric = checked_metric(metric)
    value, step, timestamp = metric.value, metric.step, metric.timestamp
    nan = math.isnan(value)
    return {"run_id": run_id, "key": metric.key, "value": 0.0 if nan else value,
            "is_nan": nan, "step": step, "timestamp": timestamp}


def _update_latest(conn: Connection, rows: list[dict[str, Any]]) -> None:
    newest: dict[str, dict[str, Any]] = {}
    for row in rows:  # the batch's newest per key first, then one upsert for all keys
        best = newest.get(row["key"])
        if best is None or (row["step"], row["timestamp"]) >= (best["step"], best["timestamp"]):
            newest[row["key"]] = row
    execute_many(conn, "upsert latest metrics", _latest_upsert, list(newest.values()))


def _metrics_insert(_: Connection) -> Any:
    columns = ("run_id", "key", "value", "is_nan", "step", "timestamp")
    return metrics_table.insert().values({c: bindparam(c) for c in columns})


def _latest_upsert(conn: Connection) -> Any:
    lm = latest_metrics
    stmt = dialect_insert(conn, lm)
    return stmt.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={c: stmt.excluded[c] for c in ("value", "is_nan", "step", "timestamp")},
        where=or_(stmt.excluded.step > lm.c.step,
                  and_(stmt.excluded.step == lm.c.step,
                       stmt.excluded.timestamp >= lm.c.timestamp)))


def _param_values(batch: Sequence[Param]) -> dict[str, str]:
    values: dict[str, str] = {}
    for p in batch:
        check_key("param", p.key)
        value = str(p.value)
        if values.get(p.key, value) != value:
            raise ConflictError(f"param '{p.key}' is logged twice in one batch with different "
                                f"values ({values[p.key]!r}, {value!r})")
        values[p.key] = value
    return values


def _write_params(conn: Connection, run_id: str, values: dict[str, str]) -> None:
    keys = list(values)
    existing: dict[str, str] = {}
    for part in chunks(keys):
        existing.update(conn.execute(select(params.c.key, params.c.value).where(
            params.c.run_id == run_id, params.c.key.in_(part))).all())
    for key, old in existing.items():
        if old != values[key]:
            raise ConflictError(f"param '{key}' of run {run_id} is already {old!r}; params are "
                                f"write-once, so {values[key]!r} cannot replace it (log it "
                                "under another key or start a new run)")
    new = [{"run_id": run_id, "key": k, "value": v} for k, v in values.items()
           if k not in existing]
    execute_many(conn, "insert params", _params_insert, new)


def _tag_rows(run_id: str, batch: Sequence[RunTag]) -> list[dict[str, Any]]:
    """One row per key (the last value given wins)."""
    rows = {t.key: {"run_id": run_id, "key": check_key("tag", t.key), "value": str(t.value)}
            for t in batch}
    return list(rows.values())


def _write_tags(conn: Connection, run_id: str, batch: Sequence[RunTag]) -> None:
    upsert(conn, tags_table, _tag_rows(run_id, batch), ["run_id", "key"], ["value"])


def _tags_insert(_: Connection) -> Any:
    return tags_table.insert().values({c: bindparam(c) for c in ("run_id", "key", "value")})


def _params_insert(_: Connection) -> Any:
    return params.insert().values({c: bindparam(c) for c in ("run_id", "key", "value")})


def _artifact_path(path: str) -> str:
    clean = posixpath.normpath(path.replace("\\", "/")).lstrip("/") if path else ""
    if not path or path.startswith("/") or clean in ("", ".") or clean.startswith(".."):
        raise UserError(f"invalid artifact path {path!r}: use a relative path inside the "
                        "run's artifact root")
    return clean


def _entity_exists(table: Any) -> filters.EntityFilter:
    def condition(key: str, compare: Any) -> Any:
        test = compare(table.c.value)
        if table is latest_metrics:
            test = and_(test, table.c.is_nan.is_(False))
        return exists().where(table.c.run_id == runs.c.run_id, table.c.key == key, test)
    return condition


RUN_TARGET = filters.Target(
    what="runs",
    strings={"status": runs.c.status, "run_name": runs.c.run_name, "run_id": runs.c.run_id,
             "user_id": runs.c.user_id, "lifecycle_stage": runs.c.lifecycle_stage,
             "artifact_uri": runs.c.artifact_uri},
    numbers={"start_time": runs.c.start_time, "end_time": runs.c.end_time,
             "experiment_id": runs.c.experiment_id},
    entities={"metric": _entity_exists(latest_metrics), "param": _entity_exists(params),
              "tag": _entity_exists(tags_table)},
)

_EXPERIMENT_TARGET = filters.Target(
    what="experiments",
    strings={"name": experiments.c.name, "lifecycle_stage": experiments.c.lifecycle_stage,
             "artifact_location": experiments.c.artifact_location},
    numbers={"creation_time": experiments.c.creation_time,
             "last_update_time": experiments.c.last_update_time,
             "experiment_id": experiments.c.experiment_id},
    entities={"tag": lambda key, compare: exists().where(
        experiment_tags.c.experiment_id == experiments.c.experiment_id,
        experiment_tags.c.key == key, compare(experiment_tags.c.value))},
)
