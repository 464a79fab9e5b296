"""Model packages built from versions (issue 12).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "model_packages",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("object_id", sa.String(length=128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.String(length=256), nullable=False),
        sa.Column("created_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_packages")),
    )
    op.create_index("ix_model_packages_version", "model_packages",
                    ["model_id", "version", "digest"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_model_packages_version", table_name="model_packages")
    op.drop_table("model_packages")
