"""Offers made in conversation rooms, each change stored with its events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, Row, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bridge.core.events import Event
from bridge.core.ids import ConversationID, SiteID, UserID
from bridge.core.models import Message
from bridge.core.offers import Offer, OfferStatus
from bridge.store.base import Sessions
from bridge.store.records import add_system_message, store_events
from bridge.store.schema import Base, OfferRow


def _to_offer(row: OfferRow | Row[Any]) -> Offer:
    return Offer(
        site=SiteID(row.site),
        conversation_id=ConversationID(row.conversation_id),
        offer_id=row.offer_id,
        status=OfferStatus(row.status),
        title=row.title,
        quantity=row.quantity,
        price=row.price,
        currency=row.currency,
        product_id=row.product_id,
        image_url=row.image_url,
        checkout_url=row.checkout_url,
        created_by=UserID(row.created_by),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _changing(offer: Offer) -> dict[str, Any]:
    return {
        "status": offer.status.value,
        "title": offer.title,
        "quantity": offer.quantity,
        "price": offer.price,
        "currency": offer.currency,
        "image_url": offer.image_url,
        "checkout_url": offer.checkout_url,
        "updated_at": offer.updated_at,
    }


def offer_status_owed() -> Any:
    return or_(OfferRow.room_status.is_(None), OfferRow.room_status != OfferRow.status)


# Built once: read after each round of a conversation's deliveries.
_OFFERS = Base.metadata.tables[OfferRow.__tablename__]
_OFFERS_OWED = (
    select(*_OFFERS.c)
    .where(_OFFERS.c.conversation_id == bindparam("id"), offer_status_owed())
    .order_by(_OFFERS.c.created_at, _OFFERS.c.offer_id)
)


class OfferStoreSql(Sessions):
    async def get_offer(self, conversation_id: ConversationID, offer_id: str) -> Offer | None:
        async with self._reads() as session:
            row = await session.get(OfferRow, (conversation_id, offer_id))
            return _to_offer(row) if row is not None else None

    async def list_offers(self, conversation_id: ConversationID) -> list[Offer]:
        async with self._reads() as session:
            rows = await session.scalars(
                select(OfferRow)
                .where(OfferRow.conversation_id == conversation_id)
                .order_by(OfferRow.created_at, OfferRow.offer_id)
            )
            return [_to_offer(row) for row in rows]

    async def add_offer(self, offer: Offer, events: Sequence[Event]) -> None:
        async with self._writes.begin() as session:
            await session.execute(
                insert(OfferRow).values(
                    conversation_id=offer.conversation_id,
                    offer_id=offer.offer_id,
                    site=offer.site,
                    product_id=offer.product_id,
                    created_by=offer.created_by,
                    created_at=offer.created_at,
                    # The member's command answered in the room: it owes nothing yet.
                    room_status=offer.status.value,
                    **_changing(offer),
                )
            )
            await store_events(session, events)

    async def save_offer(
        self,
        offer: Offer,
        expected: OfferStatus,
        notice: Message | None,
        events: Sequence[Event],
    ) -> bool:
        try:
            async with self._writes.begin() as session:
                done = await session.execute(
                    update(OfferRow)
                    .where(
                        OfferRow.conversation_id == offer.conversation_id,
                        OfferRow.offer_id == offer.offer_id,
                        OfferRow.status == expected.value,
                    )
                    .values(**_changing(offer))
                )
                if cast(CursorResult[Any], done).rowcount == 0:
                    return False
                if notice is not None:
                    await add_system_message(session, notice)
                await store_events(session, events)
            return True
        except IntegrityError:
            # The same news for the buyer was stored by another write: look again.
            return False

    async def offers_owed_to_room(self, conversation_id: ConversationID) -> list[Offer]:
        """The offers whose latest status the room has not been told, oldest first."""
        async with self._read_engine.connect() as connection:
            rows = await connection.execute(_OFFERS_OWED, {"id": conversation_id})
            return [_to_offer(row) for row in rows]

    async def mark_offer_in_room(self, offer: Offer) -> None:
        async with self._writes.begin() as session:
            await session.execute(
                update(OfferRow)
                .where(
                    OfferRow.conversation_id == offer.conversation_id,
                    OfferRow.offer_id == offer.offer_id,
                )
                .values(room_status=offer.status.value)
            )

    async def conversations_owing_offers(self) -> list[ConversationID]:
        async with self._reads() as session:
            found = await session.scalars(
                select(OfferRow.conversation_id).where(offer_status_owed()).distinct()
            )
            return [ConversationID(conversation_id) for conversation_id in found]
