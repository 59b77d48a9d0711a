"""Orders the marketplace attaches to a conversation
(`PUT /api/v1/sites/{site}/conversations/{id}/orders/{order_id}`), kept with their status.

A status only moves forward (placed → paid → shipped → delivered; cancelled from placed or
paid). Each change is stored with its `order.updated` webhook and a system message telling
the buyer, in one transaction: a refused or repeated status stores nothing.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from typing_extensions import TypedDict

from bridge.core.contact_policy import POLICY_NOTICE_PREFIX
from bridge.core.contact_policy import room_notice_text as policy_room_text
from bridge.core.events import Announcer, Event
from bridge.core.ids import ConversationID, EventID, MessageID, RoomID, SiteID, new_message_id
from bridge.core.models import Buyer, Conversation, Message, MessageStatus, SenderKind
from bridge.core.ports import MatrixRejected
from bridge.core.refusals import unknown_conversation
from bridge.core.validation import require_id
from bridge.errors import BadRequest, Conflict

logger = logging.getLogger(__name__)

MAX_ITEMS = 100
# An order's status messages carry its id in their client id (100 characters at most).
MAX_ORDER_ID_CHARS = 80
ORDER_NOTICE_PREFIX = "order-"
BACKWARDS = "BAZAAR_ORDER_STATUS_BACKWARDS"
# Amounts as decimal strings, currencies as ISO 4217 codes (the API's body models use them).
DECIMAL = r"^\d{1,12}(\.\d{1,4})?$"
CURRENCY = r"^[A-Z]{3}$"


class OrderStatus(enum.StrEnum):
    PLACED = "placed"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


OrderStatusValue = Literal["placed", "paid", "shipped", "delivered", "cancelled"]


# Where each status may go next; a status not listed as a key goes nowhere.
_NEXT: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PLACED: frozenset(
        {OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CANCELLED}
    ),
    OrderStatus.PAID: frozenset(
        {OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.CANCELLED}
    ),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
}


@dataclass(frozen=True)
class OrderItem:
    title: str
    quantity: int
    price: str


@dataclass(frozen=True)
class Order:
    site: SiteID
    conversation_id: ConversationID
    order_id: str
    status: OrderStatus
    total: str
    currency: str
    url: str | None
    items: tuple[OrderItem, ...]
    updated_at: datetime


@dataclass(frozen=True)
class OrderFields:
    """What the marketplace sent for an order, checked."""

    status: OrderStatus
    total: str
    currency: str
    url: str | None
    items: tuple[OrderItem, ...]


def check_move(old: OrderStatus | None, new: OrderStatus) -> bool:
    """Whether going from `old` (None: a new order) to `new` is a change of status; a move
    backwards raises Conflict."""
    if old is None:
        return True
    if old == new:
        return False
    if new not in _NEXT.get(old, frozenset()):
        raise Conflict(f"An order that is {old} can't become {new}", BACKWARDS)
    return True


_WORDS = {
    "en": {
        "placed": "placed",
        "paid": "paid",
        "shipped": "shipped",
        "delivered": "delivered",
        "cancelled": "cancelled",
    },
    "ru": {
        "placed": "оформлен",
        "paid": "оплачен",
        "shipped": "отправлен",
        "delivered": "доставлен",
        "cancelled": "отменён",
    },
}


def buyer_text(order_id: str, status: OrderStatus, language: str | None) -> str:
    """The buyer's system message for a status, in Russian or else English."""
    if (language or "").lower().startswith("ru"):
        return f"Заказ {order_id} {_WORDS['ru'][status]}"
    return f"Order {order_id} is {_WORDS['en'][status]}"


class OrderItemView(TypedDict):
    """One line of an order."""

    title: str
    quantity: int
    price: str


class OrderView(TypedDict):
    """An order attached to a conversation, with its status."""

    order_id: str
    conversation_id: ConversationID
    status: OrderStatusValue
    total: str
    currency: str
    url: str | None
    items: list[OrderItemView]
    updated_at: str


class OrderList(TypedDict):
    """A conversation's orders."""

    orders: list[OrderView]


def order_json(order: Order) -> OrderView:
    return {
        "order_id": order.order_id,
        "conversation_id": order.conversation_id,
        "status": order.status.value,
        "total": order.total,
        "currency": order.currency,
        "url": order.url,
        "items": [
            {"title": item.title, "quantity": item.quantity, "price": item.price}
            for item in order.items
        ],
        "updated_at": order.updated_at.isoformat(),
    }


class OrderStore(Protocol):
    """The store as the order desk uses it (`store/orders.py`)."""

    async def get_conversation(
        self, site: SiteID, conversation_id: ConversationID
    ) -> Conversation | None: ...

    async def get_buyer(self, site: SiteID, buyer_id: Any) -> Buyer | None: ...

    async def get_order(self, conversation_id: ConversationID, order_id: str) -> Order | None: ...

    async def list_orders(self, conversation_id: ConversationID) -> list[Order]: ...

    async def save_order(
        self,
        order: Order,
        expected: OrderStatus | None,
        notice: Message | None,
        events: Sequence[Event],
    ) -> bool:
        """Store the order (with its system message and events) if its stored status is
        still `expected` (None: not stored yet); False when another write came first."""


class OrderDesk:
    def __init__(
        self,
        store: OrderStore,
        announcer: Announcer,
        room_owed: Callable[[ConversationID], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._announcer = announcer
        # Wakes the courier, which brings the room in line (`OrderRoom.post`).
        self._room_owed = room_owed
        self._clock = clock

    async def _conversation(self, site: SiteID, conversation_id: ConversationID) -> Conversation:
        conversation = await self._store.get_conversation(site, conversation_id)
        if conversation is None:
            raise unknown_conversation(conversation_id)
        return conversation

    async def orders(self, site: SiteID, conversation_id: ConversationID) -> list[Order]:
        conversation = await self._conversation(site, conversation_id)
        return await self._store.list_orders(conversation.conversation_id)

    async def put(
        self, site: SiteID, conversation_id: ConversationID, order_id: object, fields: OrderFields
    ) -> tuple[Order, bool]:
        """Store the order; True when it is new. A status change tells the buyer (a system
        message) and the marketplace (`order.updated`); a repeat of the same fields is a
        no-op, a move backwards a Conflict."""
        oid = require_id(order_id, "order_id")
        if len(oid) > MAX_ORDER_ID_CHARS:
            raise BadRequest(f"'order_id' is longer than {MAX_ORDER_ID_CHARS} characters")
        conversation = await self._conversation(site, conversation_id)
        for _ in range(3):  # another write between our read and ours: look again
            old = await self._store.get_order(conversation.conversation_id, oid)
            old_status = old.status if old is not None else None
            changed = check_move(old_status, fields.status)
            order = Order(
                site=site,
                conversation_id=conversation.conversation_id,
                order_id=oid,
                status=fields.status,
                total=fields.total,
                currency=fields.currency,
                url=fields.url,
                items=fields.items,
                updated_at=self._clock(),
            )
            if old is not None and not changed and _same(old, order):
                return old, False
            events: list[Event] = list(
                self._announcer.order_updated(conversation, order_json(order))
            )
            notice = None
            if changed:
                notice = await self._notice(conversation, order)
                events += self._announcer.message_created(conversation, notice)
            if await self._store.save_order(order, old_status, notice, events):
                self._announcer.published(conversation)
                self._room_owed(conversation.conversation_id)
                return order, old is None
        raise Conflict("The order changed meanwhile: try again", "BAZAAR_ORDER_CHANGED")

    async def _notice(self, conversation: Conversation, order: Order) -> Message:
        buyer = await self._store.get_buyer(conversation.site, conversation.buyer_id)
        language = buyer.language if buyer is not None else None
        return Message(
            message_id=new_message_id(),
            conversation_id=conversation.conversation_id,
            sender=SenderKind.SYSTEM,
            sender_name="Orders",
            text=buyer_text(order.order_id, order.status, language),
            lang=language,
            status=MessageStatus.SENT,
            created_at=order.updated_at,
            client_id=notice_key(order.order_id, order.status),
        )


def notice_key(order_id: str, status: OrderStatus) -> str:
    """The client id of an order's status message: once per order and status."""
    return f"{ORDER_NOTICE_PREFIX}{status}-{order_id}"


def room_notice_text(message: Message) -> str | None:
    """The room's notice for a system message it owes: an order's status ("Order A-1001:
    paid") or the contact policy's warning."""
    if (message.client_id or "").startswith(POLICY_NOTICE_PREFIX):
        return policy_room_text(message)
    parts = (message.client_id or "").split("-", 2)
    if len(parts) != 3:
        return None
    return f"Order {parts[2]}: {parts[1]}"


class OrderRoomStore(Protocol):
    async def orders_owed_to_room(
        self, conversation_id: ConversationID
    ) -> tuple[list[Order], list[Message]]: ...

    async def mark_order_in_room(self, order: Order) -> None: ...

    async def mark_notice_posted(self, message_id: MessageID, event_id: EventID) -> None: ...

    async def conversations_owing_orders(self) -> list[ConversationID]: ...


class OrderBoard(Protocol):
    """The room's side of orders (`matrix/orders.py`)."""

    async def show_order(self, conversation: Conversation, order: Order) -> None:
        """Put the order's `io.bazaar.order` state (and the topic, when the conversation is
        about this order)."""

    async def send_tracked_notice(
        self, room_id: RoomID, text: str, key: str | None = None
    ) -> EventID: ...


class OrderRoom:
    """Brings a conversation room in line with its orders, through the courier.

    What the room still owes is in the store, not in memory: an order whose
    `room_synced_at` is behind its `updated_at` owes its state, and an order's status
    message (or a contact policy warning, which rides along) without an event id owes its
    notice (the same way automatic replies owe
    theirs). The courier calls `post` after each round of deliveries and retries it while
    the homeserver is away; `resume` wakes the courier for whatever a restart left. Each
    notice's key makes the homeserver drop a repeat of a send whose answer was lost, so a
    change reaches the room once.
    """

    def __init__(
        self,
        store: OrderRoomStore,
        board: OrderBoard,
        wake: Callable[[ConversationID], None],
    ) -> None:
        self._store = store
        self._board = board
        self._wake = wake

    async def resume(self) -> None:
        for conversation_id in await self._store.conversations_owing_orders():
            self._wake(conversation_id)

    async def post(self, conversation: Conversation) -> None:
        if conversation.room_id is None:
            return
        orders, notices = await self._store.orders_owed_to_room(conversation.conversation_id)
        for order in orders:
            try:
                await self._board.show_order(conversation, order)
            except MatrixRejected as error:
                logger.warning("The room refused order %s: %s", order.order_id, error)
            await self._store.mark_order_in_room(order)
        for message in notices:
            text = room_notice_text(message)
            if text is None:
                continue
            try:
                event_id = await self._board.send_tracked_notice(
                    conversation.room_id, text, key=message.client_id
                )
            except MatrixRejected as error:
                logger.warning("The room refused the notice of %s: %s", message.client_id, error)
                return
            await self._store.mark_notice_posted(message.message_id, event_id)


def _same(old: Order, new: Order) -> bool:
    return (old.status, old.total, old.currency, old.url, old.items) == (
        new.status,
        new.total,
        new.currency,
        new.url,
        new.items,
    )
