"""The metadata store: one MetadataStore interface; SQL (SQLite, PostgreSQL) and REST stores."""
