"""An order attached to a conversation: each status change reaches the seller's room (one
notice, the `io.bazaar.order` state, the topic of a conversation about the order) and the
buyer (one system message) exactly once; bad input and a status going back store nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import BridgeRunner, Sites
from tests.support.journeys import anna_in
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]


def order(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "total": "79.80",
        "currency": "EUR",
        "url": "https://shop.example/orders/A-1001",
        "items": [{"title": "Electric kettle", "quantity": 2, "price": "39.90"}],
        **extra,
    }


async def test_order_status_changes_reach_both_sides_once(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
    sites: Sites,
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {"name": "ACME", "members": [{"user_id": owner.user_id, "role": "owner"}]},
    )
    await marketplace.ok("PUT", "/buyers/Anna_K", {"name": "Anna K.", "language": "en"})
    conversation = await marketplace.ok(
        "POST",
        "/conversations",
        {
            "seller_id": "acme",
            "buyer_id": "Anna_K",
            "context": {"type": "order", "id": "A-1001", "title": "Order A-1001"},
        },
    )
    conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]
    await owner.wait_until(lambda: room_id in owner.invites, what="the invite")
    await owner.accept_invite(room_id)
    path = f"/conversations/{conversation_id}/orders/A-1001"

    status, placed = await marketplace.call("PUT", path, order("placed"))
    assert status == 201, placed
    assert (placed["order_id"], placed["status"], placed["total"]) == ("A-1001", "placed", "79.80")
    status, paid = await marketplace.call("PUT", path, order("paid"))
    assert (status, paid["status"]) == (200, "paid")
    status, repeat = await marketplace.call("PUT", path, order("paid"))
    assert (status, repeat["status"]) == (200, "paid")
    await marketplace.ok("PUT", path, order("shipped"))

    for bad in (
        order("lost"),
        order("shipped", total="12,50"),
        order("shipped", url="javascript:alert(1)"),
        order("shipped", items=[{"title": "Kettle", "quantity": 1, "price": "1"}] * 101),
    ):
        status, error = await marketplace.call("PUT", path, bad)
        assert status == 400, (bad, error)
        assert error["error"]
    status, error = await marketplace.call("PUT", path, order("paid"))
    assert (status, error["errcode"]) == (409, "BAZAAR_ORDER_STATUS_BACKWARDS")
    status, error = await marketplace.call(
        "PUT", "/conversations/nope/orders/A-1001", order("paid")
    )
    assert (status, error["errcode"]) == (404, "BAZAAR_UNKNOWN_CONVERSATION")
    listed = await marketplace.ok("GET", f"/conversations/{conversation_id}/orders")
    assert [(o["order_id"], o["status"]) for o in listed["orders"]] == [("A-1001", "shipped")]

    def notices() -> list[str]:
        return [
            m["content"]["body"]
            for m in owner.messages(room_id)
            if m["content"].get("body", "").startswith("Order A-1001")
        ]

    await owner.wait_until(lambda: "Order A-1001: shipped" in notices(), what="the shipped notice")
    # The buyer writes after the last change: once it is in the room, the courier has
    # posted everything owed before it, so a doubled notice would show by now.
    anna = await anna_in(runner, sites)
    try:
        await anna.ok(
            "POST",
            f"/conversations/{conversation_id}/messages",
            {"text": "When does it arrive?", "client_id": "q-1"},
        )
        await owner.wait_until(
            lambda: any(
                m["content"].get("body") == "When does it arrive?" for m in owner.messages(room_id)
            ),
            what="the buyer's question",
        )
        await owner.sync_once()
        assert notices() == ["Order A-1001: placed", "Order A-1001: paid", "Order A-1001: shipped"]
        assert {
            m["content"]["msgtype"]
            for m in owner.messages(room_id)
            if m["content"]["body"] in notices()
        } == {"m.notice"}
        state = await owner.state(room_id, "io.bazaar.order", "A-1001")
        assert state == {
            "status": "shipped",
            "total": "79.80",
            "currency": "EUR",
            "url": "https://shop.example/orders/A-1001",
            "items": [{"title": "Electric kettle", "quantity": 2, "price": "39.90"}],
        }
        topic = (await owner.state(room_id, "m.room.topic"))["topic"]
        assert topic == "Order A-1001 · shipped"
        # A new context for the same order keeps the order's status in the topic.
        await marketplace.ok(
            "PUT",
            f"/conversations/{conversation_id}/context",
            {"type": "order", "id": "A-1001", "title": "Order A-1001, 2 items"},
        )

        async def topic_is(expected: str) -> bool:
            return bool((await owner.state(room_id, "m.room.topic"))["topic"] == expected)

        await owner.wait_until_async(
            lambda: topic_is("Order A-1001, 2 items · shipped"), what="the new topic"
        )

        listed = await anna.ok("GET", f"/conversations/{conversation_id}/messages")
        system = [m["text"] for m in listed["messages"] if m["sender"] == "system"]
        assert system == [
            "Order A-1001 is placed",
            "Order A-1001 is paid",
            "Order A-1001 is shipped",
        ]
    finally:
        await anna.close()

    updates = await webhooks.wait_for("order.updated", 3)
    assert [u["order"]["status"] for u in updates] == ["placed", "paid", "shipped"]
    created = [m["message"]["text"] for m in webhooks.of_type("message.created")]
    assert [t for t in created if t.startswith("Order A-1001")] == [
        "Order A-1001 is placed",
        "Order A-1001 is paid",
        "Order A-1001 is shipped",
    ]
