"""A section of the seller's Space per label, and the label sections each room sits in.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "label_sections",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("seller_id", sa.String(200), primary_key=True),
        sa.Column("label", sa.String(32), primary_key=True),
        sa.Column("room_id", sa.String(255), nullable=False, unique=True),
    )
    op.create_table(
        "label_placements",
        sa.Column("room_id", sa.String(255), primary_key=True),
        sa.Column("label", sa.String(32), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("label_placements")
    op.drop_table("label_sections")
