"""Alembic environment for Cairn's metadata database, driven from code (no alembic.ini).

`cairn.store.sql.migrate` builds the Config and passes an open connection in
`config.attributes["connection"]`, inside a transaction it already holds (and has
locked), so the whole upgrade commits or rolls back as one.
"""

from __future__ import annotations

from alembic import context

from cairn.store.sql.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite",
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
