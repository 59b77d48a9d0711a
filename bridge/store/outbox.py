"""What waits to go out: the buyers' feed, appservice transactions, the webhook outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Integer, bindparam, delete, func, select, update

from bridge.core.events import Event
from bridge.core.ids import (
    BuyerID,
    ConversationID,
    RoomID,
    SiteID,
)
from bridge.core.storage import OutgoingWebhook, StoredFrame, StoredTransaction
from bridge.store.base import Sessions, insert_on
from bridge.store.records import (
    store_events,
    utc_now,
)
from bridge.store.schema import (
    BUYERS,
    Base,
    CatchupMarkRow,
    ConversationRow,
    FeedRow,
    SellerSpaceRow,
    SiteRoomRow,
    TransactionRow,
    WebhookRow,
)

_HOMESERVER_UP = "homeserver_up"
# Built once: a buyer's stream reads its frames after each one stored.
_FEED = Base.metadata.tables[FeedRow.__tablename__]
_FRAMES_SINCE = (
    select(_FEED.c.seq, _FEED.c.type, _FEED.c.conversation_id, _FEED.c.payload)
    .where(
        _FEED.c.site == bindparam("site"),
        _FEED.c.buyer_id == bindparam("buyer"),
        _FEED.c.seq > bindparam("since"),
    )
    .order_by(_FEED.c.seq)
    .limit(bindparam("limit", type_=Integer))
)
_LATEST_FRAME = select(BUYERS.c.feed_seq).where(
    BUYERS.c.site == bindparam("site"), BUYERS.c.buyer_id == bindparam("buyer")
)
# Built once: each of the homeserver's transactions is stored, read and marked done.
_TRANSACTIONS = Base.metadata.tables[TransactionRow.__tablename__]
_UNPROCESSED = (
    select(_TRANSACTIONS.c.txn_id, _TRANSACTIONS.c.events)
    .where(_TRANSACTIONS.c.processed_at.is_(None))
    .order_by(_TRANSACTIONS.c.received_at)
)
_PROCESSED = (
    update(_TRANSACTIONS)
    .where(_TRANSACTIONS.c.txn_id == bindparam("id"))
    .values(processed_at=bindparam("at"))
)


class OutboxStore(Sessions):
    # The buyer's feed

    async def add_frames(self, frames: Sequence[Event]) -> None:
        async with self._writes.begin() as session:
            await store_events(session, frames)

    async def frames_since(
        self, site: SiteID, buyer_id: BuyerID, since: int, limit: int
    ) -> list[StoredFrame]:
        async with self._read_engine.connect() as connection:
            rows = await connection.execute(
                _FRAMES_SINCE, {"site": site, "buyer": buyer_id, "since": since, "limit": limit}
            )
            return [
                StoredFrame(row.seq, row.type, ConversationID(row.conversation_id), row.payload)
                for row in rows
            ]

    async def latest_frame(self, site: SiteID, buyer_id: BuyerID) -> int:
        row = await self._read_first(_LATEST_FRAME, {"site": site, "buyer": buyer_id})
        return int(row.feed_seq or 0) if row is not None else 0

    # Appservice transactions

    async def store_transaction(self, txn_id: str, events: list[dict[str, Any]]) -> bool:
        """Store a transaction the homeserver pushed; False when it is stored already."""
        # With replicas, the order of arrival is the database's clock's: the homeserver
        # sends one transaction at a time, maybe to other hosts.
        received_at: Any = func.clock_timestamp() if self._shared else utc_now()
        async with self._write_engine.begin() as connection:
            stored = await connection.execute(
                insert_on(connection.dialect.name, _TRANSACTIONS)
                .values(txn_id=txn_id, events=events, received_at=received_at, processed_at=None)
                .on_conflict_do_nothing(index_elements=[_TRANSACTIONS.c.txn_id])
            )
            return stored.rowcount == 1

    async def unprocessed_transactions(self) -> list[StoredTransaction]:
        async with self._read_engine.connect() as connection:
            rows = await connection.execute(_UNPROCESSED)
            return [StoredTransaction(row.txn_id, list(row.events)) for row in rows]

    async def mark_transaction_processed(self, txn_id: str) -> None:
        async with self._write_engine.begin() as connection:
            await connection.execute(_PROCESSED, {"id": txn_id, "at": utc_now()})

    async def prune_transactions(self, processed_before: datetime) -> int:
        async with self._writes.begin() as session:
            pruned = await session.execute(
                delete(TransactionRow).where(
                    TransactionRow.processed_at.is_not(None),
                    TransactionRow.processed_at < processed_before,
                )
            )
            return cast(CursorResult[Any], pruned).rowcount

    async def event_ids_received_since(self, at: datetime) -> set[str]:
        async with self._reads() as session:
            batches = await session.scalars(
                select(TransactionRow.events).where(TransactionRow.received_at >= at)
            )
            return {
                event["event_id"]
                for events in batches
                for event in events
                if isinstance(event, dict) and isinstance(event.get("event_id"), str)
            }

    async def homeserver_last_up(self) -> datetime | None:
        async with self._reads() as session:
            row = await session.get(CatchupMarkRow, _HOMESERVER_UP)
            return None if row is None else row.at

    async def keep_homeserver_up(self, at: datetime) -> None:
        async with self._writes.begin() as session:
            await session.merge(CatchupMarkRow(name=_HOMESERVER_UP, at=at))

    async def bridge_rooms(self) -> list[RoomID]:
        async with self._reads() as session:
            rooms = [
                *await session.scalars(
                    select(ConversationRow.room_id).where(ConversationRow.room_id.is_not(None))
                ),
                *await session.scalars(select(SellerSpaceRow.management_id)),
                *await session.scalars(select(SiteRoomRow.room_id)),
            ]
            return [RoomID(room) for room in rooms if room]

    # Webhook outbox

    async def due_webhooks(self, site: SiteID, now: datetime, limit: int) -> list[OutgoingWebhook]:
        async with self._reads() as session:
            rows = await session.scalars(
                select(WebhookRow)
                .where(WebhookRow.site == site, WebhookRow.delivered_at.is_(None))
                .order_by(WebhookRow.seq)
                .limit(limit)
            )
            due = []
            for row in rows:
                # Keep order: stop at the first one still waiting out its backoff.
                if row.next_attempt_at > now:
                    break
                due.append(
                    OutgoingWebhook(
                        row.delivery_id, SiteID(row.site), row.body.encode(), row.attempts
                    )
                )
            return due

    async def next_webhook_attempt(self, site: SiteID) -> datetime | None:
        async with self._reads() as session:
            return await session.scalar(
                select(WebhookRow.next_attempt_at)
                .where(WebhookRow.site == site, WebhookRow.delivered_at.is_(None))
                .order_by(WebhookRow.seq)
                .limit(1)
            )

    async def mark_webhook_delivered(self, delivery_id: str, at: datetime) -> None:
        async with self._writes.begin() as session:
            await session.execute(
                update(WebhookRow)
                .where(WebhookRow.delivery_id == delivery_id)
                .values(delivered_at=at, attempts=WebhookRow.attempts + 1, last_error=None)
            )

    async def defer_webhook(self, delivery_id: str, next_attempt_at: datetime, error: str) -> None:
        async with self._writes.begin() as session:
            await session.execute(
                update(WebhookRow)
                .where(WebhookRow.delivery_id == delivery_id)
                .values(
                    next_attempt_at=next_attempt_at,
                    attempts=WebhookRow.attempts + 1,
                    last_error=error[:2000],
                )
            )
