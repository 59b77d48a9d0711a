"""Automatic messages (the greeting, away replies): claimed once per conversation or per
seller day, and the notices the room is still owed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, and_, exists, func, insert, or_, select, update
from sqlalchemy.orm import aliased

from bridge.core.events import EventsFor
from bridge.core.ids import ConversationID, EventID, MessageID
from bridge.core.models import Message, MessageStatus, SenderKind
from bridge.core.seller_storage import AutomaticClaim, AutoReplyMarks
from bridge.store.base import Sessions
from bridge.store.records import store_events, to_message, translation_values
from bridge.store.schema import ConversationRow, MessageRow


def owes_notice() -> Any:
    """Messages whose notice the room has not had: automatic ones with no event yet."""
    return and_(
        MessageRow.automatic.is_(True),
        MessageRow.event_id.is_(None),
        MessageRow.deleted_at.is_(None),
    )


def _member_replied(conversation_id: ConversationID) -> Any:
    return and_(
        MessageRow.conversation_id == conversation_id,
        MessageRow.sender == SenderKind.SELLER.value,
        MessageRow.automatic.is_(False),
    )


class AutomaticReplyStore(Sessions):
    async def auto_reply_marks(self, conversation_id: ConversationID) -> AutoReplyMarks:
        async with self._reads() as session:
            found = (
                await session.execute(
                    select(ConversationRow.greeted, ConversationRow.away_sent_on).where(
                        ConversationRow.conversation_id == conversation_id
                    )
                )
            ).first()
            last_reply = await session.scalar(
                select(func.max(MessageRow.created_at)).where(_member_replied(conversation_id))
            )
        if found is None:
            return AutoReplyMarks()
        return AutoReplyMarks(bool(found.greeted), found.away_sent_on, last_reply)

    async def add_automatic_messages(
        self, claims: Sequence[AutomaticClaim], events: EventsFor
    ) -> list[Message]:
        stored: list[Message] = []
        async with self._writes.begin() as session:
            for claim in claims:
                message = claim.message
                this = ConversationRow.conversation_id == message.conversation_id
                if claim.away_day is None:
                    taken = (
                        update(ConversationRow)
                        .where(this, ConversationRow.greeted.is_(False))
                        .values(greeted=True)
                    )
                else:
                    conditions = [
                        or_(
                            ConversationRow.away_sent_on.is_(None),
                            ConversationRow.away_sent_on != claim.away_day,
                        )
                    ]
                    if claim.quiet_since is not None:
                        conditions.append(
                            ~exists().where(
                                _member_replied(message.conversation_id),
                                MessageRow.created_at >= claim.quiet_since,
                            )
                        )
                    taken = (
                        update(ConversationRow)
                        .where(this, *conditions)
                        .values(away_sent_on=claim.away_day)
                    )
                result = await session.execute(taken.values(last_message_at=message.created_at))
                if cast(CursorResult[Any], result).rowcount == 0:
                    continue  # another request took the mark first
                await session.execute(
                    insert(MessageRow).values(
                        message_id=message.message_id,
                        conversation_id=message.conversation_id,
                        sender=message.sender.value,
                        sender_name=message.sender_name,
                        sender_user_id=None,
                        text=message.text,
                        html=None,
                        lang=message.lang,
                        original_text=message.original.text if message.original else None,
                        original_lang=message.original.lang if message.original else None,
                        status=message.status.value,
                        error=None,
                        client_id=message.client_id,
                        event_id=None,
                        attachments=[],
                        translation=translation_values(message.translation),
                        created_at=message.created_at,
                        edited_at=None,
                        deleted_at=None,
                        automatic=True,
                    )
                )
                await store_events(session, events(message))
                stored.append(message)
        return stored

    async def notices_owed(self, conversation_id: ConversationID) -> list[Message]:
        pending = aliased(MessageRow)
        waits_behind = (
            exists()
            .where(
                pending.conversation_id == conversation_id,
                pending.status == MessageStatus.PENDING.value,
                pending.seq < MessageRow.seq,
            )
            .correlate(MessageRow)
        )
        async with self._reads() as session:
            rows = await session.scalars(
                select(MessageRow)
                .where(MessageRow.conversation_id == conversation_id, owes_notice(), ~waits_behind)
                .order_by(MessageRow.seq)
            )
            return [to_message(row) for row in rows]

    async def mark_notice_posted(self, message_id: MessageID, event_id: EventID) -> None:
        async with self._writes.begin() as session:
            await session.execute(
                update(MessageRow)
                .where(MessageRow.message_id == message_id, MessageRow.event_id.is_(None))
                .values(event_id=event_id)
            )


def owing_notices() -> Any:
    """The conversations some automatic message still owes a notice (for the courier's
    resume)."""
    return select(MessageRow.conversation_id).where(owes_notice())
