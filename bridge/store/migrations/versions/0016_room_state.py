"""The rooms' state as transactions showed it (`matrix/room_state.py`).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "room_state",
        sa.Column("room_id", sa.String(255), primary_key=True),
        sa.Column("event_type", sa.String(255), primary_key=True),
        sa.Column("state_key", sa.String(255), primary_key=True),
        sa.Column("content", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("room_state")
