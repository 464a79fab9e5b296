"""What a server process holds: its configuration, the store and the artifact store,
opened once when the app is created. Nothing else: every request reads and writes the
database, so several processes on one PostgreSQL serve one registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cairn.commands.server import ServerConfig

if TYPE_CHECKING:
    from cairn.objects.odb import ObjectDB
    from cairn.store.base import MetadataStore


@dataclass
class ServerState:
    config: ServerConfig
    store: MetadataStore
    artifacts: ObjectDB  # content-addressed, like a remote: objects by digest

    @classmethod
    def open(cls, config: ServerConfig) -> ServerState:
        store, artifacts = config.open()
        return cls(config, store, artifacts)

    def close(self) -> None:
        self.store.close()
