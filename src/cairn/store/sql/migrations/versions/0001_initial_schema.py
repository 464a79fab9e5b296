"""The initial schema: experiments, runs and their data, the model registry.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("artifact_location", sa.Text(), nullable=False),
        sa.Column("lifecycle_stage", sa.String(length=32), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_update_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("name", name=op.f("uq_experiments_name")),
    )
    op.create_table(
        "registered_models",
        sa.Column("model_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_time", sa.BigInteger(), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_registered_models")),
        sa.UniqueConstraint("name", name=op.f("uq_registered_models_name")),
    )
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name=op.f("fk_experiment_tags_experiment_id_experiments"),
        ),
        sa.PrimaryKeyConstraint("experiment_id", "key", name=op.f("pk_experiment_tags")),
    )
    op.create_table(
        "model_versions",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_time", sa.BigInteger(), nullable=False),
        sa.Column("current_stage", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("user_id", sa.String(length=256), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("digest", sa.String(length=128), nullable=False),
        sa.Column("run_link", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.model_id"],
            name=op.f("fk_model_versions_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("model_id", "version", name=op.f("pk_model_versions")),
    )
    op.create_index(op.f("ix_model_versions_digest"), "model_versions", ["digest"], unique=False)
    op.create_index(op.f("ix_model_versions_run_id"), "model_versions", ["run_id"], unique=False)
    op.create_index(
        "ix_model_versions_stage", "model_versions", ["model_id", "current_stage"], unique=False
    )
    op.create_table(
        "registered_model_tags",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.model_id"],
            name=op.f("fk_registered_model_tags_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("model_id", "key", name=op.f("pk_registered_model_tags")),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("run_name", sa.String(length=256), nullable=False),
        sa.Column("user_id", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("start_time", sa.BigInteger(), nullable=False),
        sa.Column("end_time", sa.BigInteger(), nullable=True),
        sa.Column("lifecycle_stage", sa.String(length=32), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name=op.f("fk_runs_experiment_id_experiments"),
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_runs")),
    )
    op.create_index(
        "ix_runs_experiment",
        "runs",
        ["experiment_id", "lifecycle_stage", "start_time"],
        unique=False,
    )
    op.create_table(
        "latest_metrics",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_latest_metrics_run_id_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_latest_metrics")),
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"], unique=False)
    op.create_table(
        "metrics",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], name=op.f("fk_metrics_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metrics")),
    )
    op.create_index(
        "ix_metrics_history", "metrics", ["run_id", "key", "step", "timestamp"], unique=False
    )
    op.create_table(
        "model_aliases",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id", "version"],
            ["model_versions.model_id", "model_versions.version"],
            name="fk_model_aliases_version",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.model_id"],
            name=op.f("fk_model_aliases_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("model_id", "alias", name=op.f("pk_model_aliases")),
    )
    op.create_table(
        "model_version_tags",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id", "version"],
            ["model_versions.model_id", "model_versions.version"],
            name="fk_model_version_tags_version",
        ),
        sa.PrimaryKeyConstraint("model_id", "version", "key", name=op.f("pk_model_version_tags")),
    )
    op.create_table(
        "params",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], name=op.f("fk_params_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_params")),
    )
    op.create_table(
        "run_artifacts",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("is_dir", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_run_artifacts_run_id_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "path", name=op.f("pk_run_artifacts")),
    )
    op.create_table(
        "tags",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], name=op.f("fk_tags_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_tags")),
    )

    # The Default experiment, id 0, as in MLflow; the first created one gets id 1.
    experiments = sa.table(
        "experiments",
        sa.column("experiment_id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("artifact_location", sa.Text),
        sa.column("lifecycle_stage", sa.String),
        sa.column("creation_time", sa.BigInteger),
        sa.column("last_update_time", sa.BigInteger),
    )
    now = int(time.time() * 1000)
    op.bulk_insert(
        experiments,
        [
            {
                "experiment_id": 0,
                "name": "Default",
                "artifact_location": "",
                "lifecycle_stage": "active",
                "creation_time": now,
                "last_update_time": now,
            }
        ],
    )


def downgrade() -> None:
    for table in (
        "tags",
        "run_artifacts",
        "params",
        "model_version_tags",
        "model_aliases",
        "metrics",
        "latest_metrics",
        "runs",
        "registered_model_tags",
        "model_versions",
        "experiment_tags",
        "registered_models",
        "experiments",
    ):
        op.drop_table(table)
