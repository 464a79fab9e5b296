"""The metadata database schema (SQLAlchemy 2 Core), the single source for migrations.

Every change here needs a migration in `migrations/versions/`; a test compares this
metadata with the migrated database (`alembic check`) on SQLite and PostgreSQL.

Times are milliseconds since the epoch. Model versions are immutable after creation:
source, digest and run_id have no update path in the store.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

# Deterministic constraint names, so migrations and both databases agree on them.
metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

# A 64-bit row id that still autoincrements on SQLite (only INTEGER PRIMARY KEY does).
RowId = BigInteger().with_variant(Integer(), "sqlite")
Millis = BigInteger
NAME = 256
KEY = 250

experiments = Table(
    "experiments", metadata,
    Column("experiment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("artifact_location", Text, nullable=False),
    Column("lifecycle_stage", String(32), nullable=False),
    Column("creation_time", Millis, nullable=False),
    Column("last_update_time", Millis, nullable=False),
)

experiment_tags = Table(
    "experiment_tags", metadata,
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("run_id", String(32), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("run_name", String(NAME), nullable=False),
    Column("user_id", String(NAME), nullable=False),
    Column("status", String(20), nullable=False),
    Column("start_time", Millis, nullable=False),
    Column("end_time", Millis, nullable=True),
    Column("lifecycle_stage", String(32), nullable=False),
    Column("artifact_uri", Text, nullable=False),
    Index("ix_runs_experiment", "experiment_id", "lifecycle_stage", "start_time"),
)

params = Table(
    "params", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

tags = Table(
    "tags", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

# Full history; NaN is stored as is_nan (SQLite turns a NaN REAL into NULL).
metrics = Table(
    "metrics", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.run_id"), nullable=False),
    Column("key", String(KEY), nullable=False),
    Column("value", Float, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", Millis, nullable=False),
    Index("ix_metrics_history", "run_id", "key", "step", "timestamp"),
)

# Per run and key, the value at the greatest (step, timestamp): search filters and
# orders by metrics with one indexed lookup instead of scanning the history.
latest_metrics = Table(
    "latest_metrics", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Float, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", Millis, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

run_artifacts = Table(
    "run_artifacts", metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id"), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("digest", String(128), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("is_dir", Boolean, nullable=False),
)

registered_models = Table(
    "registered_models", metadata,
    Column("model_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("creation_time", Millis, nullable=False),
    Column("last_updated_time", Millis, nullable=False),
    # Numbers are never reused, even after the newest version is deleted.
    Column("last_version", Integer, nullable=False),
)

registered_model_tags = Table(
    "registered_model_tags", metadata,
    Column("model_id", Integer, ForeignKey("registered_models.model_id"), primary_key=True),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions", metadata,
    Column("model_id", Integer, ForeignKey("registered_models.model_id"), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("creation_time", Millis, nullable=False),
    Column("last_updated_time", Millis, nullable=False),
    Column("current_stage", String(20), nullable=False),
    Column("description", Text, nullable=False),
    Column("user_id", String(NAME), nullable=False),
    Column("source", Text, nullable=False),
    Column("run_id", String(32), nullable=True, index=True),
    Column("status", String(20), nullable=False),
    Column("digest", String(128), nullable=False, index=True),
    Column("run_link", Text, nullable=False),
    Index("ix_model_versions_stage", "model_id", "current_stage"),
)

model_version_tags = Table(
    "model_version_tags", metadata,
    Column("model_id", Integer, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("key", String(KEY), primary_key=True),
    Column("value", Text, nullable=False),
    ForeignKeyConstraint(["model_id", "version"],
                         ["model_versions.model_id", "model_versions.version"],
                         name="fk_model_version_tags_version"),
)

model_aliases = Table(
    "model_aliases", metadata,
    Column("model_id", Integer, ForeignKey("registered_models.model_id"), primary_key=True),
    Column("alias", String(NAME), primary_key=True),
    Column("version", Integer, nullable=False),
    ForeignKeyConstraint(["model_id", "version"],
                         ["model_versions.model_id", "model_versions.version"],
                         name="fk_model_aliases_version"),
)

# Added by migration 0002. Rows outlive their model (no foreign key): history is kept.
audit_log = Table(
    "audit_log", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("model_id", Integer, nullable=False),
    Column("model_name", String(NAME), nullable=False),
    Column("version", Integer, nullable=True),
    Column("action", String(32), nullable=False),
    Column("from_value", String(NAME), nullable=True),
    Column("to_value", String(NAME), nullable=True),
    Column("user_id", String(NAME), nullable=False),
    Column("timestamp", Millis, nullable=False),
    Column("reason", Text, nullable=False),
    Column("details", Text, nullable=False),  # JSON
    Index("ix_audit_log_model", "model_id", "version"),
)

# Added by migration 0003: gates, permissions, promotion requests, webhooks.

# Every policy ever set is kept; the newest version of a model is the one in force.
gate_policies = Table(
    "gate_policies", metadata,
    Column("model_id", Integer, primary_key=True, autoincrement=False),
    Column("policy_version", Integer, primary_key=True, autoincrement=False),
    Column("source", Text, nullable=False),  # the YAML as the user wrote it
    Column("document", Text, nullable=False),  # JSON: the validated policy
    Column("user_id", String(NAME), nullable=False),
    Column("created_time", Millis, nullable=False),
)

# Who may do what on a model: READ, EDIT or MANAGE; user_id "*" is everyone else.
model_permissions = Table(
    "model_permissions", metadata,
    Column("model_id", Integer, primary_key=True, autoincrement=False),
    Column("user_id", String(NAME), primary_key=True),
    Column("level", String(16), nullable=False),
)

promotion_requests = Table(
    "promotion_requests", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("model_id", Integer, nullable=False),
    Column("model_name", String(NAME), nullable=False),
    Column("version", Integer, nullable=False),
    Column("target", String(NAME), nullable=False),  # a stage, or "@alias"
    Column("archive_existing", Boolean, nullable=False),
    Column("from_stage", String(20), nullable=False),  # the version's stage when opened
    Column("state", String(16), nullable=False),  # open, approved, rejected
    Column("requested_by", String(NAME), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_time", Millis, nullable=False),
    Column("updated_time", Millis, nullable=False),
    Column("decided_by", String(NAME), nullable=True),
    Column("decision_comment", Text, nullable=False),
    Index("ix_promotion_requests_model", "model_id", "state"),
)

request_approvals = Table(
    "request_approvals", metadata,
    Column("request_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", String(NAME), primary_key=True),
    Column("comment", Text, nullable=False),
    Column("timestamp", Millis, nullable=False),
)

webhooks = Table(
    "webhooks", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("model_id", Integer, nullable=True),  # NULL: every model
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # JSON list of event names
    Column("secret_env", String(NAME), nullable=False),  # the secret stays in the environment
    Column("created_by", String(NAME), nullable=False),
    Column("created_time", Millis, nullable=False),
)

# The outbox: a delivery is written in the transaction of the change it reports, and
# sent afterwards by a worker, so a dead endpoint never blocks or undoes the change.
webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("webhook_id", BigInteger, nullable=False, index=True),
    Column("event", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # JSON
    Column("state", String(16), nullable=False),  # pending, sending, delivered, failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt", Millis, nullable=False),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=False),
    Column("created_time", Millis, nullable=False),
    Column("delivered_time", Millis, nullable=True),
    Index("ix_webhook_deliveries_due", "state", "next_attempt"),
)

# Added by migration 0004: the server's users, their API tokens, and experiment grants
# (`cairn server --auth`). A token is stored only as its SHA-256: the database never
# holds one a reader could use.
users = Table(
    "users", metadata,
    Column("name", String(NAME), primary_key=True),
    Column("is_admin", Boolean, nullable=False),
    Column("password_hash", Text, nullable=True),  # scrypt; NULL: tokens only
    Column("created_time", Millis, nullable=False),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(32), nullable=False),  # the token's first characters, to tell
    Column("user_name", String(NAME), ForeignKey("users.name"), nullable=False, index=True),
    Column("label", String(NAME), nullable=False),
    Column("created_time", Millis, nullable=False),
    Column("last_used_time", Millis, nullable=True),
    Column("revoked_time", Millis, nullable=True),
)

# Who may do what in an experiment, as model_permissions is for models.
experiment_permissions = Table(
    "experiment_permissions", metadata,
    Column("experiment_id", Integer, primary_key=True, autoincrement=False),
    Column("user_id", String(NAME), primary_key=True),
    Column("level", String(16), nullable=False),
)

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
