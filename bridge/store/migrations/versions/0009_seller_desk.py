"""The seller's desk: working hours and away message, templates, feedback forms, labels,
assignees, and automatic messages.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sellers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC")
        )
        batch_op.add_column(sa.Column("hours", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("away_message", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("email_copies", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("labels", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("assignee", sa.String(255), nullable=True))
        batch_op.add_column(
            sa.Column("greeted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("away_sent_on", sa.String(10), nullable=True))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("automatic", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "seller_templates",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("seller_id", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("position", sa.Double(), nullable=False),
        sa.Column("visible", sa.Boolean(), nullable=False),
        sa.Column("attachment", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site", "seller_id"], ["sellers.site", "sellers.seller_id"], ondelete="CASCADE"
        ),
    )
    op.create_table(
        "feedback",
        sa.Column("feedback_id", sa.String(40), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("seller_id", sa.String(200), nullable=False),
        sa.Column("buyer_id", sa.String(200), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("contact", sa.String(320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_feedback_seller", "feedback", ["site", "seller_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_feedback_seller", "feedback")
    op.drop_table("feedback")
    op.drop_table("seller_templates")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("automatic")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        for column in ("away_sent_on", "greeted", "assignee", "labels"):
            batch_op.drop_column(column)
    with op.batch_alter_table("sellers", schema=None) as batch_op:
        for column in ("email_copies", "away_message", "hours", "timezone"):
            batch_op.drop_column(column)
