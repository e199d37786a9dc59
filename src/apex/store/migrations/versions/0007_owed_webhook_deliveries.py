"""owed webhook deliveries

The alerts still owed to each webhook (next attempt and when it is due), so that retries
survive the process that started them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_owed_deliveries",
        sa.Column("webhook_id", sa.String(length=32), nullable=False),
        sa.Column("alert_id", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhooks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("webhook_id", "alert_id"),
    )
    with op.batch_alter_table("webhook_owed_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_owed_deliveries_due", ["due_at"], unique=False)
        batch_op.create_index("ix_webhook_owed_deliveries_alert", ["alert_id"], unique=False)


def downgrade() -> None:
    op.drop_table("webhook_owed_deliveries")
