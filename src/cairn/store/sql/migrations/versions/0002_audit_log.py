"""The audit log of registry changes, backfilled with one "register" entry per version.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_value", sa.String(length=256), nullable=True),
        sa.Column("to_value", sa.String(length=256), nullable=True),
        sa.Column("user_id", sa.String(length=256), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_model", "audit_log", ["model_id", "version"], unique=False)
    # Versions registered before the log existed get their "register" entry, dated at
    # their creation; their later transitions were never recorded and are not invented.
    op.execute(
        "INSERT INTO audit_log (model_id, model_name, version, action, from_value, to_value, "
        "user_id, timestamp, reason, details) "
        "SELECT v.model_id, m.name, v.version, 'register', NULL, 'None', v.user_id, "
        "v.creation_time, 'recorded by migration 0002', '{}' "
        "FROM model_versions v JOIN registered_models m ON m.model_id = v.model_id "
        "ORDER BY v.creation_time, v.model_id, v.version")


def downgrade() -> None:
    op.drop_index("ix_audit_log_model", table_name="audit_log")
    op.drop_table("audit_log")
