"""Orders without I/O: the status rules, the checks on what the marketplace sends, and the
desk storing each change once with its buyer message and webhook."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.core.events import Announcer, Event, FeedFrame, WebhookEvent
from bridge.core.ids import BuyerID, ConversationID, EventID, MessageID, RoomID, SiteID
from bridge.core.models import Buyer, Context, ContextType, Conversation, Message, Site
from bridge.core.orders import (
    BACKWARDS,
    Order,
    OrderDesk,
    OrderFields,
    OrderRoom,
    OrderStatus,
    buyer_text,
    check_move,
)
from bridge.errors import BadRequest, Conflict, NotFound
from bridge.marketplace.bodies import OrderBody
from bridge.openapi import validated
from tests.core.fakes import SITE, conversation

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
S = OrderStatus


def parse_order(raw: dict[str, Any]) -> OrderFields:
    """The fields as the marketplace API hands them to the desk."""
    return validated(OrderBody, raw).fields()


def body(status: str = "placed", **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "total": "79.80",
        "currency": "EUR",
        "url": "https://shop.example/orders/A-1001",
        "items": [{"title": "Kettle", "quantity": 2, "price": "39.90"}],
        **extra,
    }


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.PLACED, S.PAID),
        (S.PAID, S.SHIPPED),
        (S.SHIPPED, S.DELIVERED),
        (S.PLACED, S.CANCELLED),
        (S.PAID, S.CANCELLED),
        (S.PLACED, S.SHIPPED),
    ],
)
def test_a_status_moves_forward(old: OrderStatus, new: OrderStatus) -> None:
    assert check_move(old, new) is True


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.PAID, S.PLACED),
        (S.DELIVERED, S.SHIPPED),
        (S.SHIPPED, S.CANCELLED),
        (S.DELIVERED, S.CANCELLED),
        (S.CANCELLED, S.PAID),
        (S.CANCELLED, S.PLACED),
    ],
)
def test_a_status_never_goes_back(old: OrderStatus, new: OrderStatus) -> None:
    with pytest.raises(Conflict) as refused:
        check_move(old, new)
    assert refused.value.errcode == BACKWARDS


def test_a_repeat_or_a_new_order() -> None:
    assert check_move(S.PAID, S.PAID) is False
    assert check_move(None, S.SHIPPED) is True


@pytest.mark.parametrize(
    "bad",
    [
        body(status="lost"),
        body(total="12,50"),
        body(total=12.5),
        body(total="-1"),
        body(currency="euro"),
        body(url="javascript:alert(1)"),
        body(items="kettle"),
        body(items=[{"title": "Kettle", "quantity": 0, "price": "1.00"}]),
        body(items=[{"title": "Kettle", "quantity": True, "price": "1.00"}]),
        body(items=[{"title": "", "quantity": 1, "price": "1.00"}]),
        body(items=[{"title": "Kettle", "quantity": 1, "price": "free"}]),
        body(items=[{"title": "Kettle", "quantity": 1, "price": "1.00"}] * 101),
    ],
)
def test_bad_fields_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        parse_order(bad)


def test_good_fields() -> None:
    fields = parse_order(body(url=None, items=[]))
    assert (fields.status, fields.total, fields.url, fields.items) == (S.PLACED, "79.80", None, ())
    assert len(parse_order(body(items=[body()["items"][0]] * 100)).items) == 100


def test_the_buyer_reads_it_in_their_language() -> None:
    assert buyer_text("A-1001", S.PAID, "en") == "Order A-1001 is paid"
    assert buyer_text("A-1001", S.PAID, None) == "Order A-1001 is paid"
    assert buyer_text("A-1001", S.SHIPPED, "ru") == "Заказ A-1001 отправлен"


class Store:
    def __init__(self, chat: Conversation, buyer: Buyer) -> None:
        self.chat = chat
        self.buyer = buyer
        self.orders: dict[str, Order] = {}
        self.messages: list[Message] = []
        self.events: list[Event] = []
        self.in_room: dict[str, datetime] = {}

    async def get_conversation(
        self, site: SiteID, conversation_id: ConversationID
    ) -> Conversation | None:
        return self.chat if conversation_id == self.chat.conversation_id else None

    async def get_buyer(self, site: SiteID, buyer_id: Any) -> Buyer | None:
        return self.buyer

    async def get_order(self, conversation_id: ConversationID, order_id: str) -> Order | None:
        return self.orders.get(order_id)

    async def list_orders(self, conversation_id: ConversationID) -> list[Order]:
        return list(self.orders.values())

    async def save_order(
        self,
        order: Order,
        expected: OrderStatus | None,
        notice: Message | None,
        events: Sequence[Event],
    ) -> bool:
        old = self.orders.get(order.order_id)
        if (old.status if old else None) != expected:
            return False
        self.orders[order.order_id] = order
        if notice is not None:
            self.messages.append(notice)
        self.events += events
        return True

    async def orders_owed_to_room(
        self, conversation_id: ConversationID
    ) -> tuple[list[Order], list[Message]]:
        owed = [o for o in self.orders.values() if self.in_room.get(o.order_id) != o.updated_at]
        return owed, [m for m in self.messages if m.event_id is None]

    async def mark_order_in_room(self, order: Order) -> None:
        self.in_room[order.order_id] = order.updated_at

    async def mark_notice_posted(self, message_id: MessageID, event_id: EventID) -> None:
        self.messages = [
            replace(m, event_id=event_id) if m.message_id == message_id else m
            for m in self.messages
        ]

    async def conversations_owing_orders(self) -> list[ConversationID]:
        return [self.chat.conversation_id]


def desk(language: str = "en") -> tuple[OrderDesk, Store, list[ConversationID]]:
    chat = replace(conversation(), context=Context(ContextType.ORDER, "A-1001", "Order A-1001"))
    store = Store(chat, Buyer(SITE, BuyerID("anna"), "Anna", language=language))
    sites = {SITE: Site(SITE, "Shop", "en", has_webhook=True)}
    announcer = Announcer(sites, lambda site: None, lambda site, buyer: None)
    woken: list[ConversationID] = []
    return OrderDesk(store, announcer, woken.append, clock=lambda: NOW), store, woken


def webhooks(store: Store) -> list[str]:
    return [e.type for e in store.events if isinstance(e, WebhookEvent)]


async def test_each_status_change_is_told_once_and_a_repeat_is_nothing() -> None:
    orders, store, woken = desk()
    order, created = await orders.put(SITE, ConversationID("c1"), "A-1001", parse_order(body()))
    assert created and order.status == S.PLACED
    order, created = await orders.put(
        SITE, ConversationID("c1"), "A-1001", parse_order(body("paid"))
    )
    assert not created and order.status == S.PAID
    again, created = await orders.put(
        SITE, ConversationID("c1"), "A-1001", parse_order(body("paid"))
    )
    assert not created and again == order
    assert [m.text for m in store.messages] == ["Order A-1001 is placed", "Order A-1001 is paid"]
    assert [m.sender.value for m in store.messages] == ["system", "system"]
    assert webhooks(store) == [
        "order.updated",
        "message.created",
        "order.updated",
        "message.created",
    ]
    frames = [e.type for e in store.events if isinstance(e, FeedFrame)]
    # The widget redraws the order's card and shows the buyer's system message.
    assert frames == ["order.updated", "message.created", "order.updated", "message.created"]
    assert woken == [ConversationID("c1")] * 2


async def test_a_new_total_without_a_new_status_tells_only_the_marketplace() -> None:
    orders, store, _ = desk()
    await orders.put(SITE, ConversationID("c1"), "A-1001", parse_order(body()))
    await orders.put(SITE, ConversationID("c1"), "A-1001", parse_order(body(total="70.00")))
    assert len(store.messages) == 1
    assert webhooks(store) == ["order.updated", "message.created", "order.updated"]
    assert store.orders["A-1001"].total == "70.00"


async def test_backwards_and_bad_input_store_nothing() -> None:
    orders, store, _ = desk()
    await orders.put(SITE, ConversationID("c1"), "A-1001", parse_order(body("shipped")))
    before = (dict(store.orders), list(store.messages), list(store.events))
    with pytest.raises(Conflict) as refused:
        await orders.put(SITE, ConversationID("c1"), "A-1001", parse_order(body("paid")))
    assert refused.value.errcode == BACKWARDS
    with pytest.raises(BadRequest):
        await orders.put(SITE, ConversationID("c1"), "A 1001", parse_order(body()))
    with pytest.raises(BadRequest):
        await orders.put(SITE, ConversationID("c1"), "A" * 81, parse_order(body()))
    with pytest.raises(NotFound):
        await orders.put(SITE, ConversationID("nope"), "A-1001", parse_order(body()))
    assert (store.orders, store.messages, store.events) == before


async def test_a_russian_buyer_reads_russian() -> None:
    orders, store, _ = desk("ru")
    await orders.put(SITE, ConversationID("c1"), "A-1001", parse_order(body("paid")))
    assert [m.text for m in store.messages] == ["Заказ A-1001 оплачен"]


class Board:
    def __init__(self) -> None:
        self.shown: list[tuple[str, OrderStatus]] = []
        self.notices: list[tuple[str, str | None]] = []

    async def show_order(self, conversation: Conversation, order: Order) -> None:
        self.shown.append((order.order_id, order.status))

    async def send_tracked_notice(
        self, room_id: RoomID, text: str, key: str | None = None
    ) -> EventID:
        self.notices.append((text, key))
        return EventID(f"$n{len(self.notices)}")


async def test_the_room_gets_the_state_and_one_notice_per_change() -> None:
    orders, store, _ = desk()
    board = Board()
    room = OrderRoom(store, board, lambda conversation_id: None)
    await orders.put(SITE, ConversationID("c1"), "A-1001", parse_order(body()))
    await orders.put(SITE, ConversationID("c1"), "A-1001", parse_order(body("paid")))
    await room.post(store.chat)
    await room.post(store.chat)  # nothing more is owed
    assert board.shown == [("A-1001", S.PAID)]
    assert [text for text, _ in board.notices] == ["Order A-1001: placed", "Order A-1001: paid"]
    assert len({key for _, key in board.notices}) == 2


async def test_a_restart_finds_what_the_room_is_owed() -> None:
    _, store, _ = desk()
    woken: list[ConversationID] = []
    await OrderRoom(store, Board(), woken.append).resume()
    assert woken == [ConversationID("c1")]
