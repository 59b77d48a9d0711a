"""Rooms between sellers and the marketplace's admins, and the admins' control room.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_rooms",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("site", "purpose"),
        sa.UniqueConstraint("room_id"),
    )
    with op.batch_alter_table("seller_spaces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("marketplace_id", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("seller_spaces", schema=None) as batch_op:
        batch_op.drop_column("marketplace_id")

    op.drop_table("site_rooms")
