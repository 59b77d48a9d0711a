"""The Space the bot keeps for each seller.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seller_spaces",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("seller_id", sa.String(length=200), nullable=False),
        sa.Column("space_id", sa.String(length=255), nullable=False),
        sa.Column("active_id", sa.String(length=255), nullable=False),
        sa.Column("archived_id", sa.String(length=255), nullable=False),
        sa.Column("blocked_id", sa.String(length=255), nullable=False),
        sa.Column("management_id", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("site", "seller_id"),
        sa.UniqueConstraint("management_id"),
    )


def downgrade() -> None:
    op.drop_table("seller_spaces")
