"""Conversions between rows and domain records, and the events written beside a change."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bridge.core.events import Event, MailEvent, WebhookEvent
from bridge.core.ids import (
    BuyerID,
    ConversationID,
    EventID,
    MessageID,
    RoomID,
    SellerID,
    SiteID,
    UserID,
)
from bridge.core.models import (
    Attachment,
    AttachmentKind,
    Context,
    ContextType,
    Conversation,
    ConversationState,
    Message,
    MessageStatus,
    Original,
    SellerSpace,
    SenderKind,
    Side,
    Thumbnail,
    TranslationNote,
)
from bridge.store.base import insert_on
from bridge.store.schema import (
    BUYERS,
    CONVERSATIONS,
    MESSAGES,
    Base,
    ConversationRow,
    FeedRow,
    MailRow,
    MessageRow,
    SellerSpaceRow,
    WebhookRow,
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_context(raw: dict[str, Any]) -> Context:
    return Context(
        type=ContextType(raw["type"]),
        id=raw["id"],
        title=raw["title"],
        url=raw.get("url"),
        image_url=raw.get("image_url"),
        price=raw.get("price"),
        currency=raw.get("currency"),
        status=raw.get("status"),
        from_buyer=raw.get("supplied_by") == "buyer",
    )


def to_conversation(
    row: ConversationRow | Row[Any],
    unread_buyer: int = 0,
    unread_seller: int = 0,
    blocked_by: frozenset[Side] = frozenset(),
) -> Conversation:
    return Conversation(
        site=SiteID(row.site),
        conversation_id=ConversationID(row.conversation_id),
        seller_id=SellerID(row.seller_id),
        buyer_id=BuyerID(row.buyer_id),
        context=to_context(row.context),
        state=ConversationState(row.state),
        room_id=RoomID(row.room_id) if row.room_id else None,
        created_at=row.created_at,
        last_message_at=row.last_message_at,
        unread_buyer=unread_buyer,
        unread_seller=unread_seller,
        translation_enabled=row.translation_enabled,
        blocked_by=blocked_by,
        labels=tuple(row.labels or ()),
        assignee=UserID(row.assignee) if row.assignee else None,
        waiting_since=row.waiting_since,
    )


def to_message(row: MessageRow | Row[Any]) -> Message:
    original = None
    if row.original_text is not None:
        original = Original(text=row.original_text, lang=row.original_lang or "")
    return Message(
        message_id=MessageID(row.message_id),
        conversation_id=ConversationID(row.conversation_id),
        sender=SenderKind(row.sender),
        sender_name=row.sender_name,
        text=row.text,
        lang=row.lang,
        status=MessageStatus(row.status),
        error=row.error,
        created_at=row.created_at,
        client_id=row.client_id,
        sender_user_id=UserID(row.sender_user_id) if row.sender_user_id else None,
        event_id=EventID(row.event_id) if row.event_id else None,
        original=original,
        edited_at=row.edited_at,
        deleted=row.deleted_at is not None,
        html=row.html,
        attachments=tuple(to_attachment(raw) for raw in row.attachments),
        translation=to_translation_note(row.translation),
        automatic=bool(row.automatic),
    )


def attachment_values(attachment: Attachment) -> dict[str, Any]:
    """An attachment as the messages table keeps it (JSON)."""
    thumbnail = attachment.thumbnail
    return {
        "attachment_id": attachment.attachment_id,
        "kind": attachment.kind.value,
        "name": attachment.name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "mxc": attachment.mxc,
        "width": attachment.width,
        "height": attachment.height,
        "thumbnail": None
        if thumbnail is None
        else {
            "content_type": thumbnail.content_type,
            "width": thumbnail.width,
            "height": thumbnail.height,
            "size": thumbnail.size,
            "sha256": thumbnail.sha256,
            "mxc": thumbnail.mxc,
        },
    }


def to_attachment(raw: dict[str, Any]) -> Attachment:
    thumbnail = raw.get("thumbnail")
    return Attachment(
        attachment_id=raw["attachment_id"],
        kind=AttachmentKind(raw["kind"]),
        name=raw["name"],
        content_type=raw["content_type"],
        size=raw["size"],
        sha256=raw.get("sha256"),
        mxc=raw.get("mxc"),
        width=raw.get("width"),
        height=raw.get("height"),
        thumbnail=None if thumbnail is None else Thumbnail(**thumbnail),
    )


def translation_values(note: TranslationNote | None) -> dict[str, Any] | None:
    if note is None:
        return None
    return {
        "source": note.source,
        "target": note.target,
        "provider": note.provider,
        "failed": note.failed,
    }


def to_translation_note(raw: dict[str, Any] | None) -> TranslationNote | None:
    return None if raw is None else TranslationNote(**raw)


def to_seller_space(row: SellerSpaceRow) -> SellerSpace:
    return SellerSpace(
        space_id=RoomID(row.space_id),
        sections={
            ConversationState.ACTIVE: RoomID(row.active_id),
            ConversationState.ARCHIVED: RoomID(row.archived_id),
            ConversationState.BLOCKED: RoomID(row.blocked_id),
        },
        management_id=RoomID(row.management_id),
        marketplace_id=RoomID(row.marketplace_id) if row.marketplace_id else None,
        unanswered_id=RoomID(row.unanswered_id) if row.unanswered_id else None,
    )


def _webhook_values(event: WebhookEvent, at: datetime) -> dict[str, Any]:
    delivery_id = "w" + secrets.token_hex(12)
    body = {
        "id": delivery_id,
        "type": event.type,
        "site": event.site,
        "conversation_id": event.conversation_id,
        **event.payload,
    }
    return {
        "delivery_id": delivery_id,
        "site": event.site,
        "body": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        "attempts": 0,
        "next_attempt_at": at,
    }


def message_values(message: Message) -> dict[str, Any]:
    """The columns of a new message's row (`INSERT_MESSAGE`)."""
    return {
        "message_id": message.message_id,
        "conversation_id": message.conversation_id,
        "sender": message.sender.value,
        "sender_name": message.sender_name,
        "sender_user_id": message.sender_user_id,
        "text": message.text,
        "html": message.html,
        "lang": message.lang,
        "original_text": message.original.text if message.original else None,
        "original_lang": message.original.lang if message.original else None,
        "status": message.status.value,
        "error": message.error,
        "client_id": message.client_id,
        "event_id": message.event_id,
        "attachments": [attachment_values(a) for a in message.attachments],
        "translation": translation_values(message.translation),
        "created_at": message.created_at,
        "edited_at": None,
        "deleted_at": None,
        "automatic": message.automatic,
    }


async def core_connection(into: AsyncSession | AsyncConnection) -> AsyncConnection:
    """The connection under a session's transaction, what the session holds written first:
    a Core statement run on it skips the ORM's own work per statement, a large part of a
    message's cost in the store."""
    if isinstance(into, AsyncConnection):
        return into
    if into.new or into.dirty or into.deleted:
        await into.flush()
    return await into.connection()


async def store_mail(into: AsyncSession | AsyncConnection, event: MailEvent, at: datetime) -> None:
    """Queue a mail unless its dedupe key is queued already: a repeat must not undo the
    transaction it rides in (a buyer's message), so it is skipped, not refused."""
    connection = await core_connection(into)
    values = {
        "mail_id": "m" + secrets.token_hex(12),
        "site": event.site,
        "kind": event.kind,
        "sender": event.sender,
        "recipient": event.recipient,
        "message": event.message,
        "dedupe_key": event.dedupe_key,
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
    }
    statement = insert_on(connection.dialect.name, Base.metadata.tables[MailRow.__tablename__])
    await connection.execute(statement.values(values).on_conflict_do_nothing())


# Built once: they run for every message, both ways.
INSERT_MESSAGE = insert(MESSAGES)
_INSERT_WEBHOOK = insert(Base.metadata.tables[WebhookRow.__tablename__])
_INSERT_FRAME = insert(Base.metadata.tables[FeedRow.__tablename__])
_NEXT_FEED_SEQ = (
    update(BUYERS)
    .where(BUYERS.c.site == bindparam("of_site"), BUYERS.c.buyer_id == bindparam("of_buyer"))
    .values(feed_seq=BUYERS.c.feed_seq + 1)
    .returning(BUYERS.c.feed_seq)
)


async def store_events(into: AsyncSession | AsyncConnection, events: Sequence[Event]) -> None:
    """Put events in the outbox and the buyers' feeds, inside the caller's transaction.

    Core statements on the tables rather than ORM objects: these run for every message.
    """
    if not events:
        return
    connection = await core_connection(into)
    now = utc_now()
    for event in events:
        if isinstance(event, WebhookEvent):
            await connection.execute(_INSERT_WEBHOOK, _webhook_values(event, now))
            continue
        if isinstance(event, MailEvent):
            await store_mail(connection, event, now)
            continue
        seq = await connection.scalar(
            _NEXT_FEED_SEQ, {"of_site": event.site, "of_buyer": event.buyer_id}
        )
        if seq is None:
            raise LookupError(f"no buyer {event.buyer_id} on {event.site} for a feed frame")
        await connection.execute(
            _INSERT_FRAME,
            {
                "site": event.site,
                "buyer_id": event.buyer_id,
                "seq": seq,
                "type": event.type,
                "conversation_id": event.conversation_id,
                "payload": event.payload,
                "created_at": now,
            },
        )


async def add_system_message(into: AsyncSession | AsyncConnection, notice: Message) -> None:
    """A system message (an order's or offer's news for the buyer), in the caller's
    transaction; the conversation's last message moves to it."""
    connection = await core_connection(into)
    await connection.execute(INSERT_MESSAGE, message_values(notice))
    await connection.execute(
        update(CONVERSATIONS)
        .where(CONVERSATIONS.c.conversation_id == notice.conversation_id)
        .values(last_message_at=notice.created_at)
    )
