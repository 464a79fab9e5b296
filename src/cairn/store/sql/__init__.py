"""The SQL implementation of MetadataStore (SQLAlchemy 2, Alembic), for SQLite and PostgreSQL.

Importing this package imports SQLAlchemy: callers go through `cairn.store.open`.
"""

# The newest migration; a test checks it against migrations/versions. open_store compares
# it with the database's alembic_version without loading Alembic at all.
HEAD_REVISION = "0005"
