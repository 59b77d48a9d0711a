"""When the homeserver was last seen up, for finding the events it never pushed
(`matrix/catchup.py`); and transactions found by when they arrived.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catchup_marks",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_appservice_transactions_received_at", "appservice_transactions", ["received_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_appservice_transactions_received_at", "appservice_transactions")
    op.drop_table("catchup_marks")
