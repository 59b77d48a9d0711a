"""A buyer's erasure in SQL: one transaction that empties their words and profile from
every table, and the record of what Matrix still owes (`core/erasure.py`).

On SQLite the erasing connection runs with `secure_delete`, so the freed bytes are
overwritten, not left in free pages. On PostgreSQL old row versions stay as dead tuples
until VACUUM reclaims them; that is the database's own housekeeping (see the README)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import String, cast, delete, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bridge.core.erasure import Erasure
from bridge.core.ids import BuyerID, ConversationID, EventID, RoomID, SiteID
from bridge.core.models import MessageStatus, SenderKind
from bridge.store.base import Sessions
from bridge.store.records import utc_now
from bridge.store.schema import (
    BuyerRow,
    ConversationRow,
    ErasureRow,
    FeedbackRow,
    FeedRow,
    GhostRow,
    MailRow,
    MailTokenRow,
    MessageRow,
    TemplateRow,
    TransactionRow,
    TranslationRow,
    WebhookRow,
)

ERASED_ERROR = "erased at the buyer's request"
# Shorter names would match too many unrelated transactions to be worth a scan.
MIN_NEEDLE_CHARS = 3


def _sha256s(attachments: list[Any]) -> set[str]:
    found: set[str] = set()
    for attachment in attachments:
        if not isinstance(attachment, dict):
            continue
        if isinstance(attachment.get("sha256"), str):
            found.add(attachment["sha256"])
        thumbnail = attachment.get("thumbnail")
        if isinstance(thumbnail, dict) and isinstance(thumbnail.get("sha256"), str):
            found.add(thumbnail["sha256"])
    return found


def _text_hash(value: str) -> str:
    # As the translation cache keys its texts (`store/translations.text_key`).
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _json_contains(column: Any, needle: str) -> Any:
    return cast(column, String).contains(needle, autoescape=True)


async def _overwrite_freed_bytes(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(text("PRAGMA secure_delete=ON"))


def _erasure(row: ErasureRow) -> Erasure:
    return Erasure(
        site=SiteID(row.site),
        buyer_id=BuyerID(row.buyer_id),
        redactions=tuple((RoomID(room), EventID(event)) for room, event in row.redactions),
        conversations=tuple(ConversationID(c) for c in row.conversations),
        files=tuple(row.files),
    )


class ErasureStoreSql(Sessions):
    async def erase_buyer(self, site: SiteID, buyer_id: BuyerID, name: str) -> Erasure:
        async with self._writes.begin() as session:
            await _overwrite_freed_bytes(session)
            buyer = await session.get(BuyerRow, (site, buyer_id))
            if buyer is None:
                raise LookupError(buyer_id)
            rooms = {
                row.conversation_id: row.room_id
                for row in (
                    await session.execute(
                        select(ConversationRow.conversation_id, ConversationRow.room_id).where(
                            ConversationRow.site == site, ConversationRow.buyer_id == buyer_id
                        )
                    )
                )
            }
            messages, redactions, files, words = await _empty_messages(session, rooms, name)
            now = utc_now()
            await self._forget_copies(session, site, buyer, rooms, messages, words)
            old_name, email = buyer.name, buyer.email
            buyer.name = name
            buyer.email = None
            buyer.phone = None
            buyer.avatar_url = None
            buyer.profile_url = None
            buyer.summary = None
            buyer.language = None
            buyer.updated_at = now
            # Copies of the name and address elsewhere, e.g. the bot's notices to the seller.
            for needle in (old_name, email):
                if needle is not None and len(needle) >= MIN_NEEDLE_CHARS:
                    await _forget_transactions(session, json.dumps(needle)[1:-1])
            # The ghost's remembered name goes too; a NULL makes the rooms port rename it.
            await session.execute(
                update(GhostRow).where(GhostRow.display_name == old_name).values(display_name=None)
            )
            if email is not None:
                await session.execute(
                    delete(MailRow).where(
                        or_(
                            MailRow.recipient == email,
                            MailRow.message.contains(email, autoescape=True),
                        )
                    )
                )
            recorded = await _record(session, site, buyer_id, redactions, rooms, files)
        self._buyers.pop((site, buyer_id), None)
        self._buyer_changed(site, buyer_id)
        await self._empty_wal()
        return recorded

    async def _empty_wal(self) -> None:
        """On SQLite, the WAL still holds the pages as they were before the erasure: copy
        it into the database and cut it to nothing. Best effort: a reader in the middle of
        a read keeps it, and the next erasure or the clean stop empties it."""
        engine = self._writes.kw.get("bind")
        if not isinstance(engine, AsyncEngine) or engine.dialect.name != "sqlite":
            return
        async with engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            if raw is None:
                return
            # Not through SQLAlchemy: its BEGIN would make the checkpoint impossible.
            cursor = await raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await cursor.close()

    async def _forget_copies(
        self,
        session: AsyncSession,
        site: SiteID,
        buyer: BuyerRow,
        rooms: dict[str, str | None],
        messages: list[MessageRow],
        words: set[str],
    ) -> None:
        """Everywhere else the buyer's words or profile were copied to."""
        await session.execute(
            delete(MailTokenRow).where(
                MailTokenRow.site == site, MailTokenRow.buyer_id == buyer.buyer_id
            )
        )
        await session.execute(
            delete(FeedRow).where(FeedRow.site == site, FeedRow.buyer_id == buyer.buyer_id)
        )
        await session.execute(
            delete(FeedbackRow).where(
                FeedbackRow.site == site, FeedbackRow.buyer_id == buyer.buyer_id
            )
        )
        if words:
            await session.execute(
                delete(TranslationRow).where(
                    TranslationRow.text_sha256.in_({_text_hash(w) for w in words})
                )
            )
        for message in messages:
            # Webhooks about the buyer's messages, sent or not, carry their words.
            await session.execute(
                delete(WebhookRow).where(
                    WebhookRow.site == site, WebhookRow.body.contains(message.message_id)
                )
            )
        for conversation_id, room_id in rooms.items():
            # Mail about the conversation (the seller's copies, the buyer's digests).
            await session.execute(
                delete(MailRow).where(MailRow.message.contains(conversation_id, autoescape=True))
            )
            if room_id is not None:
                await _forget_transactions(session, room_id)

    async def unfinished_erasures(self) -> list[Erasure]:
        async with self._reads() as session:
            rows = await session.scalars(
                select(ErasureRow)
                .where(ErasureRow.finished_at.is_(None))
                .order_by(ErasureRow.requested_at)
            )
            return [_erasure(row) for row in rows]

    async def finish_erasure(self, site: SiteID, buyer_id: BuyerID, error: str | None) -> None:
        values: dict[str, Any] = (
            {"last_error": error[:2000]}
            if error is not None
            else {"finished_at": utc_now(), "last_error": None}
        )
        async with self._writes.begin() as session:
            await session.execute(
                update(ErasureRow)
                .where(ErasureRow.site == site, ErasureRow.buyer_id == buyer_id)
                .values(**values)
            )

    async def files_in_use(self, sha256s: Collection[str]) -> set[str]:
        used: set[str] = set()
        async with self._reads() as session:
            for sha256 in sha256s:
                message = await session.scalar(
                    select(MessageRow.seq)
                    .where(_json_contains(MessageRow.attachments, sha256))
                    .limit(1)
                )
                template = await session.scalar(
                    select(TemplateRow.name)
                    .where(_json_contains(TemplateRow.attachment, sha256))
                    .limit(1)
                )
                if message is not None or template is not None:
                    used.add(sha256)
        return used

    async def forget_room_transactions(self, room_ids: Collection[RoomID]) -> None:
        if not room_ids:
            return
        async with self._writes.begin() as session:
            await _overwrite_freed_bytes(session)
            for room_id in room_ids:
                await _forget_transactions(session, room_id)
        await self._empty_wal()


async def _empty_messages(
    session: AsyncSession, rooms: dict[str, str | None], name: str
) -> tuple[list[MessageRow], list[list[str]], set[str], set[str]]:
    """Empty the buyer's messages, keeping their rows (counts and order stay); what they
    leave owed: the rows, their events to redact, their blobs and their texts."""
    messages = list(
        await session.scalars(
            select(MessageRow).where(
                MessageRow.conversation_id.in_(list(rooms)),
                MessageRow.sender == SenderKind.BUYER,
            )
        )
    )
    redactions: list[list[str]] = []
    files: set[str] = set()
    words: set[str] = set()
    now = utc_now()
    for message in messages:
        room_id = rooms.get(message.conversation_id)
        if message.event_id is not None and room_id is not None:
            redactions.append([room_id, message.event_id])
        files |= _sha256s(message.attachments)
        words.update(t for t in (message.text, message.original_text) if t)
        message.text = ""
        message.html = None
        message.original_text = None
        message.translation = None
        message.attachments = []
        message.sender_name = name
        message.deleted_at = message.deleted_at or now
        if message.status == MessageStatus.PENDING:
            # Never to be sent now: the courier takes only pending messages.
            message.status = MessageStatus.FAILED
            message.error = ERASED_ERROR
    return messages, redactions, files, words


async def _record(
    session: AsyncSession,
    site: SiteID,
    buyer_id: BuyerID,
    redactions: list[list[str]],
    rooms: dict[str, str | None],
    files: set[str],
) -> Erasure:
    """The erasure's record, added to what an earlier erasure of the buyer still owes."""
    erasure = await session.get(ErasureRow, (site, buyer_id))
    if erasure is None:
        erasure = ErasureRow(
            site=site,
            buyer_id=buyer_id,
            requested_at=utc_now(),
            redactions=[],
            conversations=[],
            files=[],
        )
        session.add(erasure)
    erasure.redactions = [
        *erasure.redactions,
        *(pair for pair in redactions if pair not in erasure.redactions),
    ]
    erasure.conversations = sorted(set(erasure.conversations) | set(rooms))
    erasure.files = sorted(set(erasure.files) | files)
    erasure.finished_at = None
    return _erasure(erasure)


async def _forget_transactions(session: AsyncSession, needle: str) -> None:
    """Processed appservice transactions are kept only so a repeat is dropped; their events
    that mention `needle` (a room id, a name as JSON writes it) can go: the buyer's
    messages, names, the old profile in `prev_content`."""
    await session.execute(
        update(TransactionRow)
        .where(
            TransactionRow.processed_at.is_not(None),
            _json_contains(TransactionRow.events, needle),
        )
        .values(events=[])
    )
