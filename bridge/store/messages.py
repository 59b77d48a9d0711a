"""Messages: idempotent inserts, status changes, reads, paging."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningUpdate

from bridge.core.events import Event, EventsFor
from bridge.core.ids import (
    ConversationID,
    EventID,
    MessageID,
)
from bridge.core.models import (
    Attachment,
    ConversationState,
    Message,
    MessageStatus,
    Original,
    SenderKind,
    TranslationNote,
)
from bridge.core.seller_storage import WaitOpening
from bridge.core.storage import ConversationBlocked
from bridge.store.base import Sessions
from bridge.store.records import (
    INSERT_MESSAGE,
    add_system_message,
    attachment_values,
    message_values,
    store_events,
    to_message,
    translation_values,
)
from bridge.store.schema import (
    CONVERSATIONS,
    MESSAGES,
    ConversationRow,
    MessageRow,
)
from bridge.store.waits import open_wait_in

# Built once: these run for every message, and a statement object built per call costs
# more than the SQL it sends.
_TOUCH_CONVERSATION = (
    update(CONVERSATIONS)
    .where(CONVERSATIONS.c.conversation_id == bindparam("id"))
    .values(last_message_at=bindparam("at"))
)
# A buyer's message only goes in while the conversation is open, checked as it is stored.
_TOUCH_OPEN_CONVERSATION = _TOUCH_CONVERSATION.where(
    CONVERSATIONS.c.state != ConversationState.BLOCKED.value
)
_PENDING = (
    select(*MESSAGES.c)
    .where(
        MESSAGES.c.conversation_id == bindparam("id"),
        MESSAGES.c.status == MessageStatus.PENDING.value,
    )
    .order_by(MESSAGES.c.seq)
)
_MARK_DELIVERED = (
    update(MESSAGES)
    .where(MESSAGES.c.message_id == bindparam("id"))
    .values(status=MessageStatus.SENT.value, event_id=bindparam("event"), error=None)
    .returning(*MESSAGES.c)
)


def _rendering_values(
    text: str, original: Original | None, note: TranslationNote | None
) -> dict[str, Any]:
    """The columns of a message's text as its reader gets it, and of the words as written."""
    return {
        "text": text,
        "original_text": original.text if original else None,
        "original_lang": original.lang if original else None,
        "translation": translation_values(note),
    }


class MessageStore(Sessions):
    # Messages

    async def add_message(
        self,
        message: Message,
        events: Sequence[Event],
        *,
        wait: WaitOpening | None = None,
        notices: Sequence[Message] = (),
    ) -> tuple[Message, bool]:
        # Insert first and let the unique keys (client id, event id) catch a repeat: the
        # first try is by far the common case.
        try:
            async with self._write_engine.begin() as connection:
                await connection.execute(INSERT_MESSAGE, message_values(message))
                touched = await connection.execute(
                    _TOUCH_OPEN_CONVERSATION
                    if message.sender == SenderKind.BUYER
                    else _TOUCH_CONVERSATION,
                    {"id": message.conversation_id, "at": message.created_at},
                )
                if touched.rowcount == 0:
                    # Rolled back with the insert: nothing of the message stays.
                    raise ConversationBlocked(message.conversation_id)
                if wait is not None and message.sender == SenderKind.BUYER:
                    await open_wait_in(connection, message, wait)
                for notice in notices:
                    await add_system_message(connection, notice)
                await store_events(connection, events)
            return message, True
        except IntegrityError:
            async with self._reads() as session:
                existing = await self._same_message(session, message)
                if existing is None:
                    raise
                return to_message(existing), False

    @staticmethod
    async def _same_message(session: AsyncSession, message: Message) -> MessageRow | None:
        if message.client_id is not None:
            return await session.scalar(
                select(MessageRow).where(
                    MessageRow.conversation_id == message.conversation_id,
                    MessageRow.client_id == message.client_id,
                )
            )
        if message.event_id is not None:
            return await session.scalar(
                select(MessageRow).where(MessageRow.event_id == message.event_id)
            )
        return None

    async def message_by_client_id(
        self, conversation_id: ConversationID, client_id: str
    ) -> Message | None:
        async with self._reads() as session:
            row = await session.scalar(
                select(MessageRow).where(
                    MessageRow.conversation_id == conversation_id,
                    MessageRow.client_id == client_id,
                )
            )
            return to_message(row) if row else None

    async def get_message(self, message_id: MessageID) -> Message | None:
        async with self._reads() as session:
            row = await session.scalar(
                select(MessageRow).where(MessageRow.message_id == message_id)
            )
            return to_message(row) if row else None

    async def message_by_event(self, event_id: EventID) -> Message | None:
        async with self._reads() as session:
            row = await session.scalar(select(MessageRow).where(MessageRow.event_id == event_id))
            return to_message(row) if row else None

    async def list_messages(
        self, conversation_id: ConversationID, *, after: MessageID | None, limit: int
    ) -> list[Message]:
        query = select(MessageRow).where(
            MessageRow.conversation_id == conversation_id, MessageRow.deleted_at.is_(None)
        )
        if after is not None:
            anchor = select(MessageRow.seq).where(MessageRow.message_id == after)
            query = query.where(MessageRow.seq > anchor.scalar_subquery())
        async with self._reads() as session:
            rows = await session.scalars(query.order_by(MessageRow.seq).limit(limit))
            return [to_message(row) for row in rows]

    async def pending_messages(self, conversation_id: ConversationID) -> list[Message]:
        async with self._read_engine.connect() as connection:
            rows = await connection.execute(_PENDING, {"id": conversation_id})
            return [to_message(row) for row in rows]

    async def _change_message(
        self, message_id: MessageID, events: EventsFor, **values: Any
    ) -> Message:
        statement = (
            update(MESSAGES)
            .where(MESSAGES.c.message_id == message_id)
            .values(**values)
            .returning(*MESSAGES.c)
        )
        return await self._changed(message_id, statement, {}, events)

    async def _changed(
        self,
        message_id: MessageID,
        statement: ReturningUpdate[Any],
        parameters: dict[str, Any],
        events: EventsFor,
    ) -> Message:
        """Run an update that returns the message's row, and store the events it causes."""
        async with self._write_engine.begin() as connection:
            row = (await connection.execute(statement, parameters)).one_or_none()
            if row is None:
                raise LookupError(f"message {message_id} is not stored")
            message = to_message(row)
            await store_events(connection, events(message))
            return message

    async def set_attachments(
        self, message_id: MessageID, attachments: Sequence[Attachment]
    ) -> Message:
        """Record where an attachment's bytes went (the homeserver's mxc, the local copy)."""
        return await self._change_message(
            message_id, lambda _: (), attachments=[attachment_values(a) for a in attachments]
        )

    async def set_rendering(
        self,
        message_id: MessageID,
        text: str,
        original: Original | None,
        note: TranslationNote | None,
        events: EventsFor,
    ) -> Message:
        """The message's text in the reader's language; the words as written stay beside it."""
        return await self._change_message(
            message_id, events, **_rendering_values(text, original, note)
        )

    async def mark_delivered(
        self, message_id: MessageID, event_id: EventID, events: EventsFor
    ) -> Message:
        return await self._changed(
            message_id, _MARK_DELIVERED, {"id": message_id, "event": event_id}, events
        )

    async def requeue(self, message_id: MessageID, events: EventsFor) -> Message:
        return await self._change_message(
            message_id, events, status=MessageStatus.PENDING.value, error=None
        )

    async def mark_failed(self, message_id: MessageID, error: str, events: EventsFor) -> Message:
        return await self._change_message(
            message_id, events, status=MessageStatus.FAILED.value, error=error
        )

    async def edit_message(
        self,
        message_id: MessageID,
        text: str,
        html: str | None,
        edited_at: datetime,
        events: EventsFor,
        *,
        original: Original | None = None,
        note: TranslationNote | None = None,
    ) -> Message:
        return await self._change_message(
            message_id,
            events,
            html=html,
            edited_at=edited_at,
            **_rendering_values(text, original, note),
        )

    async def delete_message(
        self, message_id: MessageID, deleted_at: datetime, events: EventsFor
    ) -> Message:
        # A taken-back message keeps its row (ids stay stable) but not its words.
        return await self._change_message(
            message_id, events, text="", html=None, deleted_at=deleted_at, attachments=[]
        )

    async def mark_read(
        self,
        conversation_id: ConversationID,
        reader: SenderKind,
        up_to: MessageID,
        events: EventsFor,
    ) -> list[Message]:
        written_by = SenderKind.BUYER if reader == SenderKind.SELLER else SenderKind.SELLER
        marker = (
            ConversationRow.seller_read_seq
            if reader == SenderKind.SELLER
            else ConversationRow.buyer_read_seq
        )
        async with self._writes.begin() as session:
            anchor = await session.scalar(
                select(MessageRow.seq).where(
                    MessageRow.message_id == up_to,
                    MessageRow.conversation_id == conversation_id,
                )
            )
            if anchor is None:
                raise LookupError(f"message {up_to} is not in {conversation_id}")
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.conversation_id == conversation_id, marker < anchor)
                .values({marker: anchor})
            )
            rows = (
                await session.scalars(
                    select(MessageRow)
                    .where(
                        MessageRow.conversation_id == conversation_id,
                        MessageRow.sender == written_by.value,
                        MessageRow.seq <= anchor,
                        MessageRow.status == MessageStatus.SENT.value,
                        MessageRow.deleted_at.is_(None),
                    )
                    .order_by(MessageRow.seq)
                    .with_for_update()
                )
            ).all()
            changed = []
            for row in rows:
                row.status = MessageStatus.READ.value
            await session.flush()
            for row in rows:
                message = to_message(row)
                changed.append(message)
                await store_events(session, events(message))
            return changed

    async def last_messages(
        self, conversation_ids: Sequence[ConversationID]
    ) -> dict[ConversationID, Message]:
        if not conversation_ids:
            return {}
        latest = (
            select(func.max(MessageRow.seq))
            .where(
                MessageRow.conversation_id.in_(conversation_ids),
                MessageRow.deleted_at.is_(None),
            )
            .group_by(MessageRow.conversation_id)
        )
        async with self._reads() as session:
            rows = await session.scalars(select(MessageRow).where(MessageRow.seq.in_(latest)))
            return {ConversationID(row.conversation_id): to_message(row) for row in rows}

    async def list_messages_before(
        self, conversation_id: ConversationID, *, before: MessageID | None, limit: int
    ) -> list[Message]:
        query = select(MessageRow).where(
            MessageRow.conversation_id == conversation_id, MessageRow.deleted_at.is_(None)
        )
        if before is not None:
            anchor = select(MessageRow.seq).where(MessageRow.message_id == before)
            query = query.where(MessageRow.seq < anchor.scalar_subquery())
        async with self._reads() as session:
            newest_first = await session.scalars(query.order_by(MessageRow.seq.desc()).limit(limit))
            return [to_message(row) for row in reversed(newest_first.all())]
