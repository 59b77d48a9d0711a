"""The mail outbox (mail stored whole with what caused it, sent once) and the buyer's digest
of unread replies, marked in the same transaction as its mail."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, and_, exists, select, update

from bridge.core.events import Event
from bridge.core.ids import ConversationID
from bridge.core.models import ConversationState, SenderKind
from bridge.core.seller_storage import OutgoingMail, UnreadReplies
from bridge.store.base import Sessions
from bridge.store.records import store_events, to_conversation, to_message
from bridge.store.schema import ConversationRow, MailRow, MessageRow

# The most recent unread replies a digest shows; older ones are counted in by the link.
DIGEST_MESSAGES = 10

_UNSENT = and_(MailRow.sent_at.is_(None), MailRow.failed_at.is_(None))


class MailOutboxStore(Sessions):
    # The outbox

    async def due_mails(self, now: datetime, limit: int) -> list[OutgoingMail]:
        async with self._reads() as session:
            rows = await session.scalars(
                select(MailRow)
                .where(_UNSENT, MailRow.next_attempt_at <= now)
                # In the order they were queued: a mail that waited goes before a newer one.
                .order_by(MailRow.seq)
                .limit(limit)
            )
            return [
                OutgoingMail(row.mail_id, row.sender, row.recipient, row.message, row.attempts)
                for row in rows
            ]

    async def next_mail_attempt(self) -> datetime | None:
        async with self._reads() as session:
            return await session.scalar(
                select(MailRow.next_attempt_at)
                .where(_UNSENT)
                .order_by(MailRow.next_attempt_at)
                .limit(1)
            )

    async def mark_mails_sent(self, mail_ids: Sequence[str], at: datetime) -> None:
        if not mail_ids:
            return
        async with self._writes.begin() as session:
            await session.execute(
                update(MailRow)
                .where(MailRow.mail_id.in_(mail_ids))
                .values(sent_at=at, attempts=MailRow.attempts + 1)
            )

    async def defer_mail(self, mail_id: str, next_attempt_at: datetime, error: str) -> None:
        await self._update_mail(
            mail_id,
            next_attempt_at=next_attempt_at,
            attempts=MailRow.attempts + 1,
            last_error=error[:2000],
        )

    async def fail_mail(self, mail_id: str, at: datetime, error: str) -> None:
        await self._update_mail(
            mail_id, failed_at=at, attempts=MailRow.attempts + 1, last_error=error[:2000]
        )

    async def _update_mail(self, mail_id: str, **values: Any) -> None:
        async with self._writes.begin() as session:
            await session.execute(update(MailRow).where(MailRow.mail_id == mail_id).values(values))

    # The buyer's digest

    async def unread_replies(self, written_before: datetime, limit: int) -> list[UnreadReplies]:
        def unseen(conversation: Any) -> Any:
            return and_(
                MessageRow.conversation_id == conversation.conversation_id,
                MessageRow.sender == SenderKind.SELLER.value,
                MessageRow.automatic.is_(False),
                MessageRow.deleted_at.is_(None),
                MessageRow.seq > conversation.buyer_read_seq,
                MessageRow.seq > conversation.buyer_mailed_seq,
            )

        async with self._reads() as session:
            conversations = list(
                await session.scalars(
                    select(ConversationRow)
                    .where(
                        ConversationRow.state != ConversationState.BLOCKED.value,
                        exists()
                        .where(unseen(ConversationRow), MessageRow.created_at <= written_before)
                        .correlate(ConversationRow),
                    )
                    .order_by(ConversationRow.last_message_at)
                    .limit(limit)
                )
            )
            found = []
            for row in conversations:
                messages = list(
                    await session.scalars(
                        select(MessageRow)
                        .where(unseen(row))
                        .order_by(MessageRow.seq.desc())
                        .limit(DIGEST_MESSAGES)
                    )
                )
                if not messages:
                    continue
                found.append(
                    UnreadReplies(
                        to_conversation(row),
                        [to_message(message) for message in reversed(messages)],
                        messages[0].seq,
                    )
                )
            return found

    async def queue_digest(
        self, conversation_id: ConversationID, last_seq: int, events: Sequence[Event]
    ) -> bool:
        async with self._writes.begin() as session:
            marked = await session.execute(
                update(ConversationRow)
                .where(
                    ConversationRow.conversation_id == conversation_id,
                    ConversationRow.buyer_mailed_seq < last_seq,
                )
                .values(buyer_mailed_seq=last_seq)
            )
            if cast(CursorResult[Any], marked).rowcount == 0:
                return False
            await store_events(session, events)
            return True
