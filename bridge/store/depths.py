"""How much work waits in the store, for the operator's gauges, and whether the database
answers at all, for the readiness check."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.core.models import MessageStatus
from bridge.store.schema import MailRow, MessageRow, TransactionRow, WebhookRow


@dataclass(frozen=True)
class QueueDepths:
    """Rows waiting: buyer messages not yet in their room, webhooks not yet delivered,
    mail neither sent nor refused, appservice transactions not yet applied."""

    pending_messages: int
    webhook_outbox: int
    mail_queue: int
    unprocessed_transactions: int


async def queue_depths(sessions: async_sessionmaker[AsyncSession]) -> QueueDepths:
    """The four counts in one round trip; each is served by an index on its status."""
    query = select(
        select(func.count())
        .select_from(MessageRow)
        .where(MessageRow.status == MessageStatus.PENDING.value)
        .scalar_subquery(),
        select(func.count())
        .select_from(WebhookRow)
        .where(WebhookRow.delivered_at.is_(None))
        .scalar_subquery(),
        select(func.count())
        .select_from(MailRow)
        .where(MailRow.sent_at.is_(None), MailRow.failed_at.is_(None))
        .scalar_subquery(),
        select(func.count())
        .select_from(TransactionRow)
        .where(TransactionRow.processed_at.is_(None))
        .scalar_subquery(),
    )
    async with sessions() as session:
        row = (await session.execute(query)).one()
    return QueueDepths(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


async def database_answers(sessions: async_sessionmaker[AsyncSession]) -> None:
    """`SELECT 1`; raises whatever the driver raises when the database does not answer."""
    async with sessions() as session:
        await session.execute(text("SELECT 1"))
