"""revocations and accounts

Access-token revocations are recorded here (Redis only carries them between processes), so they
survive a Redis restart.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revocations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("revocations", schema=None) as batch_op:
        batch_op.create_index("ix_revocations_revoked_at", ["revoked_at"], unique=False)
        batch_op.create_index("ix_revocations_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("revocations")
