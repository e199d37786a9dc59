"""ingestion keys

Ingestion keys for the OTLP/HTTP receiver (PROTOCOL section 6).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingestion_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    with op.batch_alter_table("ingestion_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ingestion_keys_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ingestion_keys_prefix"), ["prefix"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ingestion_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingestion_keys_prefix"))
        batch_op.drop_index(batch_op.f("ix_ingestion_keys_user_id"))
    op.drop_table("ingestion_keys")
