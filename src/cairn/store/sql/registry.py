"""The model registry in the SQL store: registered models, versions, stages, aliases, audit.

Every write that depends on the registry's current state (the next version number, who
holds a stage) first locks the registered model's row: SELECT … FOR UPDATE on
PostgreSQL, BEGIN IMMEDIATE on SQLite. Concurrent callers therefore queue, and each
sees what the previous one committed. Stages are stored as the registry names them:
their vocabulary and rules live in `cairn.registry.stages`, not here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Engine, Row, bindparam, exists, func, select, tuple_, union

from cairn.errors import ConflictError, NotFoundError, UserError
from cairn.store.base import MetadataStore, check_model_name, version_number
from cairn.store.entities import (
    ACTIVE,
    AliasMove,
    AuditEntry,
    Expected,
    ModelVersion,
    PagedList,
    RegisteredModel,
    StageChange,
    StageChangeResult,
)
from cairn.store.search import Value, check_max_results
from cairn.store.sql import filters, webhooks
from cairn.store.sql.common import (
    check_key,
    chunks,
    dialect_insert,
    json_list,
    now_ms,
    page,
    upsert,
)
from cairn.store.sql.engine import transaction
from cairn.store.sql.tables import (
    audit_log,
    gate_policies,
    model_aliases,
    model_permissions,
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
    run_artifacts,
    runs,
)

MAX_MODELS = 1000
# The registry's retired stage (cairn.registry.stages.ARCHIVED): a version holding a
# protected alias may not enter it, whichever path archives it.
ARCHIVED = "Archived"
MAX_VERSIONS = 200000
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)

mv, rm = model_versions, registered_models
# Statements built once (parameters bound at execution): building costs more than running.
_BUMP_VERSION = (rm.update().where(rm.c.model_id == bindparam("b_model"))
                 .values(last_version=bindparam("b_version"), last_updated_time=bindparam("b_now")))
_SET_STAGE = (mv.update().where(mv.c.model_id == bindparam("b_model"),
                                mv.c.version == bindparam("b_version"))
              .values(current_stage=bindparam("b_stage"), last_updated_time=bindparam("b_now")))


# The hot reads in one statement each: the version row with its tags and aliases as JSON
# aggregates (correlated subqueries on their primary keys), built once with bind
# parameters. Building and compiling a statement costs more than SQLite running it.
_tag, _alias, _holder = (model_version_tags.alias("t"), model_aliases.alias("a"),
                         model_aliases.alias("holder"))
_VERSION = select(
    mv, rm.c.name,
    select(json_list(_tag.c.key, _tag.c.value))
    .where(_tag.c.model_id == mv.c.model_id, _tag.c.version == mv.c.version)
    .scalar_subquery().label("tags_json"),
    select(json_list(_alias.c.alias))
    .where(_alias.c.model_id == mv.c.model_id, _alias.c.version == mv.c.version)
    .scalar_subquery().label("aliases_json"),
).join(rm, rm.c.model_id == mv.c.model_id)
_VERSION_BY_NUMBER = _VERSION.where(rm.c.name == bindparam("name"),
                                    mv.c.version == bindparam("version"))
_VERSION_BY_ALIAS = (_VERSION.join(_holder, (_holder.c.model_id == mv.c.model_id)
                                   & (_holder.c.version == mv.c.version))
                     .where(rm.c.name == bindparam("name"), _holder.c.alias == bindparam("alias")))
_top, _top_model = model_versions.alias("top"), registered_models.alias("top_model")
_stage_tops = (select(_top.c.model_id, func.max(_top.c.version).label("version"))
               .join(_top_model, _top_model.c.model_id == _top.c.model_id)
               .where(_top_model.c.name == bindparam("name"))
               .group_by(_top.c.model_id, _top.c.current_stage).subquery("stage_tops"))
_STAGE_TOPS = _VERSION.join(_stage_tops, (_stage_tops.c.model_id == mv.c.model_id)
                            & (_stage_tops.c.version == mv.c.version))


class RegistryStore(MetadataStore):
    """The model registry half of SqlStore."""

    _engine: Engine

    # -- registered models -----------------------------------------------------------

    def create_registered_model(self, name: str, tags: dict[str, str] | None = None,
                                description: str = "", user_id: str = "") -> RegisteredModel:
        check_model_name(name)
        with transaction(self._engine, write=True, durable=True) as conn:
            if _model_row(conn, name, missing_ok=True) is not None:
                raise ConflictError(f"registered model '{name}' already exists; register a new "
                                    "version of it or choose another name")
            now = now_ms()
            model_id = _insert_model(conn, name, description, now)
            if model_id is None:
                raise ConflictError(f"registered model '{name}' already exists")
            _grant_creator(conn, model_id, user_id)
            _set_tags(conn, registered_model_tags, {"model_id": model_id}, tags or {})
            return _models(conn, [_model_row(conn, name)])[0]

    def get_registered_model(self, name: str) -> RegisteredModel:
        with transaction(self._engine, write=False) as conn:
            return _models(conn, [_model_row(conn, name)])[0]

    def search_registered_models(self, filter_string: str = "", max_results: int = 100,
                                 order_by: Sequence[str] | None = None,
                                 page_token: str | None = None
                                 ) -> PagedList[RegisteredModel]:
        check_max_results(max_results, MAX_MODELS)
        query = select(rm)
        condition = filters.where(filter_string, MODEL_TARGET)
        if condition is not None:
            query = query.where(condition)
        query = query.order_by(*filters.order(order_by, MODEL_TARGET), rm.c.name)
        with transaction(self._engine, write=False) as conn:
            rows, token = page(conn, query, max_results, page_token)
            return PagedList(_models(conn, rows), token)

    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        with transaction(self._engine, write=True, durable=True) as conn:
            row = _model_row(conn, name, for_update=True)
            conn.execute(rm.update().where(rm.c.model_id == row.model_id)
                         .values(description=description, last_updated_time=now_ms()))
            return _models(conn, [_model_row(conn, name)])[0]

    def rename_registered_model(self, name: str, new_name: str,
                                user_id: str = "") -> RegisteredModel:
        check_model_name(new_name)
        with transaction(self._engine, write=True, durable=True) as conn:
            row = _model_row(conn, name, for_update=True)
            if _model_row(conn, new_name, missing_ok=True) is not None:
                raise ConflictError(f"cannot rename '{name}' to '{new_name}': a registered "
                                    "model with that name exists")
            conn.execute(rm.update().where(rm.c.model_id == row.model_id)
                         .values(name=new_name, last_updated_time=now_ms()))
            record_audit(conn, row.model_id, new_name, None, "rename", name, new_name, user_id)
            return _models(conn, [_model_row(conn, new_name)])[0]

    def delete_registered_model(self, name: str, user_id: str = "") -> None:
        with transaction(self._engine, write=True, durable=True) as conn:
            row = _model_row(conn, name, for_update=True)
            for alias, version in _protected_holders(conn, row.model_id).items():
                raise ConflictError(f"cannot delete model '{name}': its version {version} holds "
                                    f"the protected alias '{alias}'; move or delete the alias "
                                    "first (MANAGE)")
            where_model = {"model_id": row.model_id}
            for table in (model_aliases, model_version_tags, mv, registered_model_tags):
                conn.execute(table.delete().filter_by(**where_model))
            conn.execute(rm.delete().where(rm.c.model_id == row.model_id))
            record_audit(conn, row.model_id, name, None, "delete_model", None, None, user_id)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        with transaction(self._engine, write=True, durable=True) as conn:
            row = _model_row(conn, name)
            _set_tags(conn, registered_model_tags, {"model_id": row.model_id}, {key: value})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        with transaction(self._engine, write=True, durable=True) as conn:
            row = _model_row(conn, name)
            t = registered_model_tags
            if not conn.execute(t.delete().where(t.c.model_id == row.model_id,
                                                 t.c.key == key)).rowcount:
                raise NotFoundError(f"registered model '{name}' has no tag '{key}'")

    # -- model versions --------------------------------------------------------------

    def create_model_version(self, name: str, source: str, digest: str,
                             run_id: str | None = None, tags: dict[str, str] | None = None,
                             description: str = "", user_id: str = "") -> ModelVersion:
        check_model_name(name)
        with transaction(self._engine, write=True, durable=True) as conn:
            if run_id and conn.execute(select(runs.c.run_id)
                                       .where(runs.c.run_id == run_id)).first() is None:
                raise NotFoundError(f"run '{run_id}' does not exist; register a model from a "
                                    "logged run, or leave run_id out")
            now = now_ms()
            model = _model_row(conn, name, for_update=True, missing_ok=True)
            if model is None:
                created_id = _insert_model(conn, name, "", now)  # a concurrent caller may win
                if created_id is not None:
                    _grant_creator(conn, created_id, user_id)
                model = _model_row(conn, name, for_update=True)
            version = model.last_version + 1
            conn.execute(_BUMP_VERSION, {"b_model": model.model_id, "b_version": version,
                                         "b_now": now})
            created = ModelVersion(name, version, now, now, "None", description, user_id,
                                   source, run_id or None, "READY", digest,
                                   {k: str(v) for k, v in (tags or {}).items()})
            conn.execute(mv.insert(), {
                "model_id": model.model_id, "version": version, "creation_time": now,
                "last_updated_time": now, "current_stage": "None", "description": description,
                "user_id": user_id, "source": source, "run_id": created.run_id,
                "status": "READY", "digest": digest, "run_link": ""})
            _set_tags(conn, model_version_tags,
                      {"model_id": model.model_id, "version": version}, created.tags)
            record_audit(conn, model.model_id, name, version, "register", None, "None", user_id,
                   details={"source": source, "digest": digest, "run_id": run_id}, now=now)
            return created

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        number = version_number(version)
        with transaction(self._engine, write=False) as conn:
            row = conn.execute(_VERSION_BY_NUMBER, {"name": name, "version": number}).first()
            if row is None:  # the NotFoundError naming what is missing
                return _versions(conn, [_version_row(conn, name, number)])[0]
            return _version_of(row)

    def update_model_version(self, name: str, version: int, description: str,
                             user_id: str = "") -> ModelVersion:
        with transaction(self._engine, write=True, durable=True) as conn:
            row = _version_row(conn, name, version)
            conn.execute(mv.update().where(mv.c.model_id == row.model_id,
                                           mv.c.version == row.version)
                         .values(description=description, last_updated_time=now_ms()))
            record_audit(conn, row.model_id, name, row.version, "update", None, None, user_id,
                   details={"description": description})
            return _versions(conn, [_version_row(conn, name, version)])[0]

    def delete_model_version(self, name: str, version: int, user_id: str = "") -> None:
        with transaction(self._engine, write=True, durable=True) as conn:
            model = _model_row(conn, name, for_update=True)
            row = _version_row(conn, name, version)
            _refuse_if_protected(model, row.version, "delete",
                                 _protected_holders(conn, model.model_id))
            key = {"model_id": row.model_id, "version": row.version}
            for table in (model_aliases, model_version_tags, mv):
                conn.execute(table.delete().filter_by(**key))
            record_audit(conn, row.model_id, name, row.version, "delete_version", row.current_stage,
                   None, user_id, details={"digest": row.digest})

    def apply_stage_change(self, change: StageChange) -> StageChangeResult:
        with transaction(self._engine, write=True, durable=True) as conn:
            model = _model_row(conn, change.name, for_update=True)  # promotions queue
            return stage_change(conn, model, change)

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None
                            ) -> list[ModelVersion]:
        with transaction(self._engine, write=False) as conn:
            tops = {r.current_stage: r for r in conn.execute(_STAGE_TOPS, {"name": name})}
            if not tops:
                _model_row(conn, name)  # NotFoundError unless the model has no versions
        wanted = list(stages) if stages else sorted(tops, key=lambda s: tops[s].version,
                                                    reverse=True)
        return [_version_of(tops[s]) for s in wanted if s in tops]

    def get_stage_holders(self, name: str, stage: str) -> tuple[int, ...]:
        with transaction(self._engine, write=False) as conn:
            return stage_holders(conn, _model_row(conn, name).model_id, stage)

    def search_model_versions(self, filter_string: str = "", max_results: int = 10000,
                              order_by: Sequence[str] | None = None,
                              page_token: str | None = None) -> PagedList[ModelVersion]:
        check_max_results(max_results, MAX_VERSIONS)
        query = select(mv, rm.c.name).join(rm, rm.c.model_id == mv.c.model_id)
        condition = filters.where(filter_string, VERSION_TARGET)
        if condition is not None:
            query = query.where(condition)
        query = query.order_by(*filters.order(order_by, VERSION_TARGET), rm.c.name,
                               mv.c.version.desc())
        with transaction(self._engine, write=False) as conn:
            rows, token = page(conn, query, max_results, page_token)
            return PagedList(_versions(conn, rows), token)

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        with transaction(self._engine, write=True, durable=True) as conn:
            row = _version_row(conn, name, version)
            _set_tags(conn, model_version_tags,
                      {"model_id": row.model_id, "version": row.version}, {key: value})

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        with transaction(self._engine, write=True, durable=True) as conn:
            row = _version_row(conn, name, version)
            t = model_version_tags
            if not conn.execute(t.delete().where(t.c.model_id == row.model_id,
                                                 t.c.version == row.version,
                                                 t.c.key == key)).rowcount:
                raise NotFoundError(f"model '{name}' version {version} has no tag '{key}'")

    def apply_alias_move(self, move: AliasMove) -> AuditEntry:
        if move.version is not None:
            _check_alias(move.alias)
        with transaction(self._engine, write=True, durable=True) as conn:
            model = _model_row(conn, move.name, for_update=True)
            return alias_move(conn, model, move)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with transaction(self._engine, write=False) as conn:
            row = conn.execute(_VERSION_BY_ALIAS, {"name": name, "alias": alias}).first()
            if row is None:
                _model_row(conn, name)
                raise NotFoundError(f"registered model '{name}' has no alias '{alias}'")
            return _version_of(row)

    def get_audit_log(self, name: str, version: int | None = None) -> list[AuditEntry]:
        a = audit_log
        with transaction(self._engine, write=False) as conn:
            model = _model_row(conn, name, missing_ok=True)
            model_id = model.model_id if model is not None else _deleted_model_id(conn, name)
            query = select(a).where(a.c.model_id == model_id).order_by(a.c.id)
            if version is not None:
                query = query.where(a.c.version == int(version))
            return [AuditEntry(r.id, name, r.version, r.action, r.from_value, r.to_value,
                               r.user_id, r.timestamp, r.reason, json.loads(r.details))
                    for r in conn.execute(query)]

    def referenced_digests(self, excluding_runs: Sequence[str] = (),
                           excluding_versions: Sequence[tuple[str, int]] = ()) -> set[str]:
        excluded = set(excluding_runs)
        without = {(name, int(version)) for name, version in excluding_versions}
        with transaction(self._engine, write=False) as conn:
            if without:  # by name and number, filtered here as the runs are
                found = {row.digest for row in conn.execute(
                    select(rm.c.name, mv.c.version, mv.c.digest)
                    .join(rm, rm.c.model_id == mv.c.model_id))
                    if (row.name, row.version) not in without}
                found.update(row.digest for row in conn.execute(
                    select(run_artifacts.c.run_id, run_artifacts.c.digest)
                    .join(runs, runs.c.run_id == run_artifacts.c.run_id)
                    .where(runs.c.lifecycle_stage == ACTIVE)) if row.run_id not in excluded)
                return {d for d in found if d}
            if not excluded:
                artifacts = (select(run_artifacts.c.digest)
                             .join(runs, runs.c.run_id == run_artifacts.c.run_id)
                             .where(runs.c.lifecycle_stage == ACTIVE))
                rows = conn.execute(union(select(mv.c.digest), artifacts)).scalars()
                return {d for d in rows if d}
            # Filtered here, not in SQL: a NOT IN of 10,000 ids outgrows bind limits.
            found = set(conn.execute(select(mv.c.digest)).scalars())
            found.update(row.digest for row in conn.execute(
                select(run_artifacts.c.run_id, run_artifacts.c.digest)
                .join(runs, runs.c.run_id == run_artifacts.c.run_id)
                .where(runs.c.lifecycle_stage == ACTIVE)) if row.run_id not in excluded)
            return {d for d in found if d}

    def digests_of_runs(self, run_ids: Sequence[str]) -> dict[str, bool]:
        found: dict[str, bool] = {}
        ids = sorted(set(run_ids))
        a = run_artifacts
        with transaction(self._engine, write=False) as conn:
            for chunk in chunks(ids):
                for row in conn.execute(select(a.c.digest, a.c.is_dir).distinct()
                                        .where(a.c.run_id.in_(chunk))):
                    found[row.digest] = found.get(row.digest, False) or bool(row.is_dir)
        return found


# -- helpers ------------------------------------------------------------------------

def _check_alias(alias: object) -> None:
    if not isinstance(alias, str) or not alias or len(alias) > 256 \
            or _RESERVED_ALIAS.match(alias) or "/" in alias or "@" in alias:
        raise UserError(f"invalid alias {alias!r}: use a name like 'champion' (not 'latest' "
                        "or 'v<number>', which models:/ URIs reserve)")


def _insert_model(conn: Connection, name: str, description: str, now: int) -> int | None:
    """Insert the model unless it exists (concurrent registrations race here safely)."""
    values: dict[str, Any] = {"name": name, "description": description, "creation_time": now,
                              "last_updated_time": now, "last_version": 0}
    if conn.dialect.name == "sqlite":
        # SQLite's rowid reuses the id of a deleted newest model, whose audit rows, gate
        # policies, permissions and webhooks would then pass to the new one; the audit
        # log remembers every id a deleted model had (its delete_model row).
        values["model_id"] = select(func.coalesce(func.max(rm.c.model_id), 0)).scalar_subquery()
        used = select(func.coalesce(func.max(audit_log.c.model_id), 0)).scalar_subquery()
        values["model_id"] = func.max(values["model_id"], used) + 1
    stmt = dialect_insert(conn, rm).values(**values)
    result = conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"])
                          .returning(rm.c.model_id)).first()
    return None if result is None else int(result[0])


def _model_row(conn: Connection, name: str, for_update: bool = False,
               missing_ok: bool = False) -> Any:
    query = select(rm).where(rm.c.name == name)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    if row is None and not missing_ok:
        raise NotFoundError(f"registered model '{name}' does not exist; `cairn models list` "
                            "shows the ones that do")
    return row


def _deleted_model_id(conn: Connection, name: str) -> Any:
    """The newest deleted model of that name: its audit log outlives it."""
    a = audit_log
    found = conn.execute(select(a.c.model_id)
                         .where(a.c.model_name == name, a.c.action == "delete_model")
                         .order_by(a.c.id.desc()).limit(1)).scalar()
    if found is None:
        _model_row(conn, name)  # NotFoundError naming it
    return found


def _version_row(conn: Connection, name: str, version: int) -> Row[Any]:
    number = version_number(version)
    row = conn.execute(select(mv, rm.c.name).join(rm, rm.c.model_id == mv.c.model_id)
                       .where(rm.c.name == name, mv.c.version == number)).first()
    if row is None:
        _model_row(conn, name)  # names the model when it is the model that is missing
        raise NotFoundError(f"registered model '{name}' has no version {version}")
    return row





def _alias_version(conn: Connection, model_id: int, alias: str) -> int | None:
    a = model_aliases
    return conn.execute(select(a.c.version).where(a.c.model_id == model_id,
                                                  a.c.alias == alias)).scalar()


def stage_change(conn: Connection, model: Any, change: StageChange) -> StageChangeResult:
    """Apply `change` to the locked `model` (inside the caller's transaction)."""
    name, stage = model.name, change.stage
    row = _version_row(conn, name, change.version)
    holders = stage_holders(conn, model.model_id, stage)
    check_expected(conn, model, row.current_stage, holders, change.expected)
    protected = _protected_holders(conn, model.model_id)
    if stage == ARCHIVED:
        _refuse_if_protected(model, row.version, "archive", protected)
    now = now_ms()
    archived = _archive_others(conn, model, change, holders, protected, now) \
        if change.archive_others_to else ()
    conn.execute(_SET_STAGE, {"b_model": model.model_id, "b_version": row.version,
                              "b_stage": stage, "b_now": now})
    audit = record_audit(conn, model.model_id, name, row.version, "transition",
                   row.current_stage, stage, change.user_id, change.reason,
                   change.details, now)
    moved = replace(_versions(conn, [row])[0], current_stage=stage,
                    last_updated_timestamp=now)
    return StageChangeResult(moved, row.current_stage, archived, audit)


def alias_move(conn: Connection, model: Any, move: AliasMove) -> AuditEntry:
    """Apply `move` to the locked `model` (inside the caller's transaction)."""
    name, alias = model.name, move.alias
    previous = _alias_version(conn, model.model_id, alias)
    row = _version_row(conn, name, move.version) if move.version is not None else None
    check_expected(conn, model, row.current_stage if row is not None else None,
                   () if previous is None else (previous,), move.expected)
    if row is None:
        if previous is None:
            raise NotFoundError(f"registered model '{name}' has no alias '{alias}'")
        conn.execute(model_aliases.delete().where(model_aliases.c.model_id == model.model_id,
                                                  model_aliases.c.alias == alias))
        return record_audit(conn, model.model_id, name, previous, "delete_alias", str(previous),
                      None, move.user_id, move.reason, {"alias": alias, **move.details})
    upsert(conn, model_aliases, [{"model_id": model.model_id, "alias": alias,
                                  "version": row.version}],
           ["model_id", "alias"], ["version"])
    return record_audit(conn, model.model_id, name, row.version, "set_alias",
                  None if previous is None else str(previous), str(row.version),
                  move.user_id, move.reason, {"alias": alias, **move.details})


def stage_holders(conn: Connection, model_id: int, stage: str) -> tuple[int, ...]:
    return tuple(conn.execute(select(mv.c.version).where(
        mv.c.model_id == model_id, mv.c.current_stage == stage).order_by(mv.c.version))
        .scalars())


def check_expected(conn: Connection, model: Any, stage: str | None,
                   holders: tuple[int, ...], expected: Expected | None) -> None:
    """Refuse a change decided on a state that no longer holds (gates evaluated outside
    the transaction: a smoke test takes seconds, and no lock is held that long)."""
    if expected is None:
        return
    changed = (expected.policy_version != policy_version(conn, model.model_id)
               or (expected.holders is not None and expected.holders != holders)
               or (expected.stage is not None and stage is not None
               and expected.stage != stage))
    if changed:
        raise ConflictError(f"model '{model.name}' changed while its gates were being "
                            "evaluated (another promotion, or a new gate policy); run the "
                            "command again to evaluate them on what is there now")


def policy_version(conn: Connection, model_id: int) -> int:
    """The gate policy version in force for the model (0: none was ever set)."""
    g = gate_policies
    return int(conn.execute(select(func.max(g.c.policy_version))
                            .where(g.c.model_id == model_id)).scalar() or 0)


def _protected_holders(conn: Connection, model_id: int) -> dict[str, int]:
    """alias → version, for the set aliases the policy in force marks protected."""
    g = gate_policies
    document = conn.execute(select(g.c.document).where(g.c.model_id == model_id)
                            .order_by(g.c.policy_version.desc()).limit(1)).scalar()
    protected = json.loads(document).get("protected_aliases", []) if document else []
    if not protected:
        return {}
    a = model_aliases
    return dict(conn.execute(select(a.c.alias, a.c.version).where(
        a.c.model_id == model_id, a.c.alias.in_(protected))).all())


def _refuse_if_protected(model: Any, version: int, doing: str,
                         protected: dict[str, int]) -> None:
    for alias, holder in sorted(protected.items()):
        if holder == version:
            raise ConflictError(f"cannot {doing} model '{model.name}' version {version}: it "
                                f"holds the protected alias '{alias}'; move the alias to "
                                "another version first (needs MANAGE)")


def _grant_creator(conn: Connection, model_id: int, user_id: str) -> None:
    if user_id:
        conn.execute(model_permissions.insert(), {"model_id": model_id, "user_id": user_id,
                                                  "level": "MANAGE"})


def _archive_others(conn: Connection, model: Any, change: StageChange,
                    holders: tuple[int, ...], protected: dict[str, int],
                    now: int) -> tuple[int, ...]:
    """Move the other holders of `change.stage` away; the versions moved, ascending."""
    others = tuple(v for v in holders if v != change.version)
    if change.archive_others_to == ARCHIVED:
        for other in others:
            _refuse_if_protected(model, other, "archive", protected)
    if others:
        conn.execute(_SET_STAGE, [{"b_model": model.model_id, "b_version": other,
                                   "b_stage": change.archive_others_to, "b_now": now}
                                  for other in others])
    for other in others:
        record_audit(conn, model.model_id, model.name, other, "transition", change.stage,
               change.archive_others_to, change.user_id, change.archive_reason, None, now)
    return others


def record_audit(conn: Connection, model_id: int, name: str, version: int | None, action: str,
           from_value: str | None, to_value: str | None, user_id: str, reason: str = "",
           details: Mapping[str, object] | None = None, now: int | None = None
           ) -> AuditEntry:
    entry = AuditEntry(0, name, version, action, from_value, to_value, user_id or "",
                       now or now_ms(), reason or "", dict(details or {}))
    audit_id = conn.execute(audit_log.insert().returning(audit_log.c.id), {
        "model_id": model_id, "model_name": name, "version": version, "action": action,
        "from_value": from_value, "to_value": to_value, "user_id": entry.user_id,
        "timestamp": entry.timestamp, "reason": entry.reason,
        "details": json.dumps(entry.details, sort_keys=True, default=str)}).scalar_one()
    recorded = replace(entry, id=audit_id)
    webhooks.enqueue(conn, model_id, recorded)
    return recorded


def _set_tags(conn: Connection, table: Any, owner: dict[str, Any],
              values: dict[str, str]) -> None:
    rows = [{**owner, "key": check_key("tag", k), "value": str(v)} for k, v in values.items()]
    upsert(conn, table, rows, [*owner, "key"], ["value"])


def _versions(conn: Connection, rows: Sequence[Row[Any]]) -> list[ModelVersion]:
    """Versions with their tags and aliases, in two queries per chunk."""
    keys = [(r.model_id, r.version) for r in rows]
    tag_map: dict[tuple[int, int], dict[str, str]] = {k: {} for k in keys}
    alias_map: dict[tuple[int, int], list[str]] = {k: [] for k in keys}
    t, a = model_version_tags, model_aliases
    for part in chunks(keys):
        for tag in conn.execute(select(t).where(_version_keys(t, part))):
            tag_map[(tag.model_id, tag.version)][tag.key] = tag.value
        for al in conn.execute(select(a).where(_version_keys(a, part)).order_by(a.c.alias)):
            alias_map[(al.model_id, al.version)].append(al.alias)
    return [_model_version(r, tag_map[(r.model_id, r.version)],
                           tuple(alias_map[(r.model_id, r.version)])) for r in rows]


def _version_of(row: Row[Any]) -> ModelVersion:
    """A version from a row of `_VERSION`: its tags and aliases came along as JSON."""
    return _model_version(row, dict(row.tags_json or ()), tuple(sorted(row.aliases_json or ())))


def _model_version(r: Row[Any], tags: dict[str, str], aliases: tuple[str, ...]
                   ) -> ModelVersion:
    return ModelVersion(
        name=r.name, version=r.version, creation_timestamp=r.creation_time,
        last_updated_timestamp=r.last_updated_time, current_stage=r.current_stage,
        description=r.description, user_id=r.user_id, source=r.source, run_id=r.run_id,
        status=r.status, digest=r.digest, tags=tags, aliases=aliases, run_link=r.run_link)


def _version_keys(table: Any, keys: Sequence[tuple[int, int]]) -> Any:
    if len(keys) == 1:  # the common case, and a simpler statement to build
        return (table.c.model_id == keys[0][0]) & (table.c.version == keys[0][1])
    return tuple_(table.c.model_id, table.c.version).in_(keys)


def _models(conn: Connection, rows: Sequence[Any]) -> list[RegisteredModel]:
    ids = [r.model_id for r in rows]
    tag_map: dict[int, dict[str, str]] = {i: {} for i in ids}
    alias_map: dict[int, dict[str, int]] = {i: {} for i in ids}
    latest: dict[int, list[ModelVersion]] = {i: [] for i in ids}
    for part in chunks(ids):
        t, a = registered_model_tags, model_aliases
        for tag in conn.execute(select(t).where(t.c.model_id.in_(part))):
            tag_map[tag.model_id][tag.key] = tag.value
        for al in conn.execute(select(a).where(a.c.model_id.in_(part))):
            alias_map[al.model_id][al.alias] = al.version
        newest = (select(mv.c.model_id, func.max(mv.c.version).label("version"))
                  .where(mv.c.model_id.in_(part))
                  .group_by(mv.c.model_id, mv.c.current_stage).subquery())
        version_rows = conn.execute(
            select(mv, rm.c.name).join(rm, rm.c.model_id == mv.c.model_id)
            .join(newest, (newest.c.model_id == mv.c.model_id)
                  & (newest.c.version == mv.c.version))
            .order_by(mv.c.version)).all()
        for row, version in zip(version_rows, _versions(conn, version_rows), strict=True):
            latest[row.model_id].append(version)
    return [RegisteredModel(r.name, r.creation_time, r.last_updated_time, r.description,
                            tag_map[r.model_id], alias_map[r.model_id],
                            tuple(latest[r.model_id])) for r in rows]


def _alias_filter(op: str, value: Value) -> Any:
    a = model_aliases
    return exists().where(a.c.model_id == mv.c.model_id, a.c.version == mv.c.version,
                          filters.compare(a.c.alias, op, value))


def _model_alias_filter(op: str, value: Value) -> Any:
    a = model_aliases
    return exists().where(a.c.model_id == rm.c.model_id, filters.compare(a.c.alias, op, value))


def _stage_filter(op: str, value: Value) -> Any:
    """Stage names compare in any case ('production'), as the registry accepts them."""
    if op in ("LIKE", "ILIKE"):
        return filters.compare(mv.c.current_stage, op, value)
    lowered: Value = tuple(str(v).lower() for v in value) if isinstance(value, tuple) \
        else str(value).lower()
    return filters.compare(func.lower(mv.c.current_stage), op, lowered)


VERSION_TARGET = filters.Target(
    what="model versions",
    strings={"name": rm.c.name, "run_id": mv.c.run_id, "source": mv.c.source,
             "current_stage": mv.c.current_stage, "user_id": mv.c.user_id,
             "status": mv.c.status, "digest": mv.c.digest, "description": mv.c.description},
    numbers={"version": mv.c.version, "version_number": mv.c.version,
             "creation_timestamp": mv.c.creation_time,
             "last_updated_timestamp": mv.c.last_updated_time},
    entities={"tag": lambda key, compare: exists().where(
        model_version_tags.c.model_id == mv.c.model_id,
        model_version_tags.c.version == mv.c.version,
        model_version_tags.c.key == key, compare(model_version_tags.c.value))},
    special={"alias": _alias_filter, "current_stage": _stage_filter,
             "stage": _stage_filter},
)

MODEL_TARGET = filters.Target(
    what="registered models",
    strings={"name": rm.c.name, "description": rm.c.description},
    numbers={"creation_timestamp": rm.c.creation_time,
             "last_updated_timestamp": rm.c.last_updated_time},
    entities={"tag": lambda key, compare: exists().where(
        registered_model_tags.c.model_id == rm.c.model_id,
        registered_model_tags.c.key == key, compare(registered_model_tags.c.value))},
    special={"alias": _model_alias_filter},
)
