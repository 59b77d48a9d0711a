"""Orders attached to conversations, each stored with its system message and events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, Row, and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bridge.core.contact_policy import POLICY_NOTICE_PREFIX
from bridge.core.events import Event
from bridge.core.ids import ConversationID, SiteID
from bridge.core.models import Message, SenderKind
from bridge.core.orders import ORDER_NOTICE_PREFIX, Order, OrderItem, OrderStatus
from bridge.store.base import Sessions
from bridge.store.records import add_system_message, store_events, to_message
from bridge.store.schema import MESSAGES, Base, MessageRow, OrderRow


def _to_order(row: OrderRow | Row[Any]) -> Order:
    return Order(
        site=SiteID(row.site),
        conversation_id=ConversationID(row.conversation_id),
        order_id=row.order_id,
        status=OrderStatus(row.status),
        total=row.total,
        currency=row.currency,
        url=row.url,
        items=tuple(
            OrderItem(item["title"], int(item["quantity"]), item["price"]) for item in row.items
        ),
        updated_at=row.updated_at,
    )


def _values(order: Order) -> dict[str, Any]:
    return {
        "status": order.status.value,
        "total": order.total,
        "currency": order.currency,
        "url": order.url,
        "items": [
            {"title": item.title, "quantity": item.quantity, "price": item.price}
            for item in order.items
        ],
        "updated_at": order.updated_at,
    }


class OrderStoreSql(Sessions):
    async def get_order(self, conversation_id: ConversationID, order_id: str) -> Order | None:
        async with self._reads() as session:
            row = await session.get(OrderRow, (conversation_id, order_id))
            return _to_order(row) if row is not None else None

    async def has_orders(self, conversation_id: ConversationID) -> bool:
        async with self._reads() as session:
            found = await session.scalar(
                select(OrderRow.order_id)
                .where(OrderRow.conversation_id == conversation_id)
                .limit(1)
            )
            return found is not None

    async def list_orders(self, conversation_id: ConversationID) -> list[Order]:
        async with self._reads() as session:
            rows = await session.scalars(
                select(OrderRow)
                .where(OrderRow.conversation_id == conversation_id)
                .order_by(OrderRow.created_at, OrderRow.order_id)
            )
            return [_to_order(row) for row in rows]

    async def save_order(
        self,
        order: Order,
        expected: OrderStatus | None,
        notice: Message | None,
        events: Sequence[Event],
    ) -> bool:
        try:
            async with self._writes.begin() as session:
                if expected is None:
                    await session.execute(
                        insert(OrderRow).values(
                            conversation_id=order.conversation_id,
                            order_id=order.order_id,
                            site=order.site,
                            created_at=order.updated_at,
                            **_values(order),
                        )
                    )
                else:
                    done = await session.execute(
                        update(OrderRow)
                        .where(
                            OrderRow.conversation_id == order.conversation_id,
                            OrderRow.order_id == order.order_id,
                            OrderRow.status == expected.value,
                        )
                        .values(**_values(order))
                    )
                    if cast(CursorResult[Any], done).rowcount == 0:
                        return False
                if notice is not None:
                    await add_system_message(session, notice)
                await store_events(session, events)
            return True
        except IntegrityError:
            # Another write made the order (or its notice) first: the caller looks again.
            return False

    async def orders_owed_to_room(
        self, conversation_id: ConversationID
    ) -> tuple[list[Order], list[Message]]:
        """The orders whose room state is behind, and the status notices the room has not
        had (the orders' system messages without an event), oldest first."""
        async with self._read_engine.connect() as connection:
            rows = await connection.execute(_ORDERS_OWED, {"id": conversation_id})
            orders = [_to_order(row) for row in rows]
            notices = await connection.execute(_NOTICES_OWED, {"id": conversation_id})
            return orders, [to_message(row) for row in notices]

    async def mark_order_in_room(self, order: Order) -> None:
        async with self._writes.begin() as session:
            await session.execute(
                update(OrderRow)
                .where(
                    OrderRow.conversation_id == order.conversation_id,
                    OrderRow.order_id == order.order_id,
                )
                .values(room_synced_at=order.updated_at)
            )

    async def conversations_owing_orders(self) -> list[ConversationID]:
        async with self._reads() as session:
            owing = select(OrderRow.conversation_id).where(order_state_owed())
            noticing = select(MessageRow.conversation_id).where(order_notice_owed())
            found = await session.scalars(owing.union(noticing))
            return [ConversationID(conversation_id) for conversation_id in found]


def order_state_owed() -> Any:
    return or_(OrderRow.room_synced_at.is_(None), OrderRow.room_synced_at != OrderRow.updated_at)


def order_notice_owed() -> Any:
    """System messages the room owes a notice for: orders' statuses and the contact
    policy's warnings."""
    return and_(
        MessageRow.sender == SenderKind.SYSTEM.value,
        or_(
            MessageRow.client_id.like(f"{ORDER_NOTICE_PREFIX}%"),
            MessageRow.client_id.like(f"{POLICY_NOTICE_PREFIX}%"),
        ),
        MessageRow.event_id.is_(None),
    )


# Built once: read after each round of a conversation's deliveries.
_ORDERS = Base.metadata.tables[OrderRow.__tablename__]
_ORDERS_OWED = (
    select(*_ORDERS.c)
    .where(_ORDERS.c.conversation_id == bindparam("id"), order_state_owed())
    .order_by(_ORDERS.c.created_at, _ORDERS.c.order_id)
)
_NOTICES_OWED = (
    select(*MESSAGES.c)
    .where(MESSAGES.c.conversation_id == bindparam("id"), order_notice_owed())
    .order_by(MESSAGES.c.seq)
)
