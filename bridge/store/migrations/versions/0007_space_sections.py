"""Matrix work that must survive a restart: where each conversation room sits in its
seller's Space, and which rooms' members still have to follow a change.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "space_placements",
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("section", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("room_id"),
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("members_stale", sa.Boolean(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("members_stale")
    op.drop_table("space_placements")
