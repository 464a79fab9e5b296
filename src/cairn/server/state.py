"""What a server process holds: its configuration, the store and the artifact store,
opened once when the app is created, and with `--auth` the users and tokens (on the same
database). Nothing else: every request reads and writes the database, so several
processes on one PostgreSQL serve one registry.

With auth, each request works on `for_user(user)`: the same state whose store checks
that user's permissions on every call (`cairn.server.authorization`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cairn.commands.server import ServerConfig

if TYPE_CHECKING:
    from cairn.objects.odb import ObjectDB
    from cairn.store.base import MetadataStore
    from cairn.store.sql.auth import AuthStore, User


@dataclass
class ServerState:
    config: ServerConfig
    store: MetadataStore
    artifacts: ObjectDB  # content-addressed, like a remote: objects by digest
    auth: AuthStore | None = None  # None: the server runs without --auth

    @classmethod
    def open(cls, config: ServerConfig) -> ServerState:
        store, artifacts = config.open()
        if not config.auth:
            return cls(config, store, artifacts)
        from cairn.store.sql.auth import AuthStore
        from cairn.store.sql.store import SqlStore

        assert isinstance(store, SqlStore)  # the server's database is always SQL
        return cls(config, store, artifacts, AuthStore(store.engine))

    def for_user(self, user: User) -> ServerState:
        """This state as `user` may use it."""
        from cairn.server.authorization import AuthorizedStore

        assert self.auth is not None
        store = AuthorizedStore(self.store, self.auth, user, self.config.default_permission)
        return dataclasses.replace(self, store=store)

    def close(self) -> None:
        self.store.close()
