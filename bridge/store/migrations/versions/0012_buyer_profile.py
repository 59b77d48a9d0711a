"""The buyer's profile as the marketplace shares it with the seller.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("buyers") as batch:
        batch.add_column(sa.Column("phone", sa.String(40), nullable=True))
        batch.add_column(sa.Column("avatar_url", sa.String(2048), nullable=True))
        batch.add_column(sa.Column("profile_url", sa.String(2048), nullable=True))
        batch.add_column(sa.Column("summary", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("buyers") as batch:
        batch.drop_column("summary")
        batch.drop_column("profile_url")
        batch.drop_column("avatar_url")
        batch.drop_column("phone")
