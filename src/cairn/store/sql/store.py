"""SqlStore: the MetadataStore on SQLite or PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Engine

from cairn.store.sql.governance import GovernanceStore
from cairn.store.sql.packages import PackageStore
from cairn.store.sql.registry import RegistryStore
from cairn.store.sql.runs import RunStore
from cairn.store.sql.webhooks import WebhookStore


class SqlStore(RunStore, GovernanceStore, WebhookStore, PackageStore, RegistryStore):
    """Runs, experiments and the model registry in one database. Open it with
    `cairn.store.open.open_store(uri)`, which also checks the schema revision."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    def __repr__(self) -> str:
        return f"SqlStore({self._engine.url.render_as_string(hide_password=True)!r})"
