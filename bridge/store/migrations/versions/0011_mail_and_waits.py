"""E-mail both ways (the outbox, reply tokens, unsubscribes, the buyer's digest mark) and
response times (waits, their reminders, the Space's Unanswered section).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("buyer_mailed_seq", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("seller_spaces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unanswered_id", sa.String(255), nullable=True))
    op.create_table(
        "mail_outbox",
        sa.Column("seq", Serial, primary_key=True, autoincrement=True),
        sa.Column("mail_id", sa.String(40), nullable=False, unique=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=True, unique=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_mail_outbox_due", "mail_outbox", ["sent_at", "failed_at", "next_attempt_at"]
    )
    op.create_index("ix_mail_outbox_queue", "mail_outbox", ["sent_at", "failed_at", "seq"])
    op.create_table(
        "mail_reply_tokens",
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("buyer_id", sa.String(200), nullable=False),
        sa.Column(
            "conversation_id",
            sa.String(40),
            sa.ForeignKey("conversations.conversation_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("site", "buyer_id", "conversation_id", name="uq_mail_reply_token"),
    )
    op.create_table(
        "mail_unsubscribes",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("buyer_id", sa.String(200), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "response_waits",
        sa.Column("wait_id", Serial, primary_key=True, autoincrement=True),
        sa.Column(
            "conversation_id",
            sa.String(40),
            sa.ForeignKey("conversations.conversation_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("seller_id", sa.String(200), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(40), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("closed_by", sa.String(255), nullable=True),
        sa.Column("wall_seconds", sa.Double(), nullable=True),
        sa.Column("working_seconds", sa.Double(), nullable=True),
        sa.Column("first", sa.Boolean(), nullable=False),
    )
    op.create_index(
        "ix_response_waits_seller", "response_waits", ["site", "seller_id", "opened_at"]
    )
    op.create_index("ix_response_waits_open", "response_waits", ["conversation_id", "closed_at"])
    op.create_table(
        "response_reminders",
        sa.Column(
            "wait_id",
            Serial,
            sa.ForeignKey("response_waits.wait_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_response_reminders_due", "response_reminders", ["done_at", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_response_reminders_due", "response_reminders")
    op.drop_table("response_reminders")
    op.drop_index("ix_response_waits_open", "response_waits")
    op.drop_index("ix_response_waits_seller", "response_waits")
    op.drop_table("response_waits")
    op.drop_table("mail_unsubscribes")
    op.drop_table("mail_reply_tokens")
    op.drop_index("ix_mail_outbox_queue", "mail_outbox")
    op.drop_index("ix_mail_outbox_due", "mail_outbox")
    op.drop_table("mail_outbox")
    with op.batch_alter_table("seller_spaces", schema=None) as batch_op:
        batch_op.drop_column("unanswered_id")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("waiting_since")
        batch_op.drop_column("buyer_mailed_seq")
