"""Model packages in the SQL store: which packages were built from which versions.

The table is keyed by the model's id (so a record survives a rename) and has no foreign
key to the version, like the audit log: a package outlives nothing, but its record must
not block deleting a version. Recording a digest twice returns the first record.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Engine, Index, Integer, String, Table, select

from cairn.errors import UserError
from cairn.store.base import MetadataStore, PackageRecord, version_number
from cairn.store.sql import registry as sql_registry
from cairn.store.sql.common import now_ms
from cairn.store.sql.engine import transaction
from cairn.store.sql.tables import NAME, Millis, RowId, metadata, registered_models

# Added by migration 0005 (issue 12).
model_packages = Table(
    "model_packages", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("model_id", Integer, nullable=False),
    Column("model_name", String(NAME), nullable=False),  # when it was built
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),  # sha256:<hex> of the OCI manifest
    Column("object_id", String(128), nullable=False),
    Column("size", Millis, nullable=False),  # a BigInteger, like the times
    Column("user_id", String(NAME), nullable=False),
    Column("created_time", Millis, nullable=False),
    Index("ix_model_packages_version", "model_id", "version", "digest", unique=True),
)
p, rm = model_packages, registered_models


def check_package_digest(digest: object) -> str:
    if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71 \
            or any(c not in "0123456789abcdef" for c in digest[7:]):
        raise UserError(f"invalid package digest {digest!r}: expected sha256:<64 hex digits>")
    return digest


class PackageStore(MetadataStore):
    _engine: Engine

    def record_package(self, name: str, version: int, digest: str, object_id: str,
                       size: int, user_id: str = "") -> PackageRecord:
        check_package_digest(digest)
        if not isinstance(size, int) or size < 0:
            raise UserError(f"invalid package size {size!r}")
        with transaction(self._engine, write=True, durable=True) as conn:
            row = sql_registry._version_row(conn, name, version)
            found = conn.execute(select(p).where(p.c.model_id == row.model_id,
                                                 p.c.version == row.version,
                                                 p.c.digest == digest)).first()
            if found is None:
                conn.execute(p.insert().values(
                    model_id=row.model_id, model_name=name, version=row.version,
                    digest=digest, object_id=object_id, size=size, user_id=user_id,
                    created_time=now_ms()))
                found = conn.execute(select(p).where(p.c.model_id == row.model_id,
                                                     p.c.version == row.version,
                                                     p.c.digest == digest)).one()
            return _record(found, name)

    def list_packages(self, name: str | None = None, version: int | None = None
                      ) -> list[PackageRecord]:
        query = select(p, rm.c.name).join(rm, rm.c.model_id == p.c.model_id, isouter=True)
        with transaction(self._engine, write=False) as conn:
            if name is not None:
                query = query.where(p.c.model_id == sql_registry._model_row(conn, name).model_id)
                if version is not None:
                    query = query.where(p.c.version == version_number(version))
            rows = conn.execute(query.order_by(p.c.id)).all()
        return [_record(r, r.name or r.model_name) for r in rows]


def _record(row: Any, name: str) -> PackageRecord:
    return PackageRecord(name, row.version, row.digest, row.object_id, row.size, row.user_id,
                         row.created_time)
