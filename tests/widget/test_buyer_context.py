"""What a buyer's widget says a conversation is about is marked as the buyer's, and never
carries an order, a price or a status: only the marketplace knows those."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.conftest import SITE, BridgeRunner, Sites, product
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.journeys import with_seller
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]

FORGED_ORDER = {
    "type": "order",
    "id": "A-1001",
    "title": "Order A-1001",
    "price": "0.01",
    "currency": "EUR",
    "status": "PAID · REFUND APPROVED",
}


async def test_a_buyer_can_not_open_an_order_or_set_a_price_from_the_widget(
    runner: BridgeRunner,
    sites: Sites,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    await with_seller(marketplace, owner)
    buyer = BuyerClient(runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "b1"))
    try:
        status, error = await buyer.call(
            "POST", "/conversations", {"seller_id": "acme", "context": FORGED_ORDER}
        )
        assert (status, error["errcode"]) == (403, "BAZAAR_ORDER_FROM_MARKETPLACE")
        assert (await buyer.ok("GET", "/conversations"))["conversations"] == []

        claimed = product(price="0.01", status="PAID · REFUND APPROVED")
        started = await buyer.ok(
            "POST", "/conversations", {"seller_id": "acme", "context": claimed}
        )
    finally:
        await buyer.close()
    assert started["context"] == {
        "type": "product",
        "id": "kettle-1",
        "title": claimed["title"],
        "url": claimed["url"],
        "supplied_by": "buyer",
    }

    # What the seller sees says whose word it is, and holds no price or status.
    conversation = await marketplace.ok("GET", f"/conversations/{started['conversation_id']}")
    room_id = conversation["room_id"]
    await owner.wait_until(lambda: room_id in owner.invites, what="the invite")
    await owner.accept_invite(room_id)
    topic = (await owner.state(room_id, "m.room.topic"))["topic"]
    assert "0.01" not in topic and "REFUND" not in topic
    assert "as the buyer's page gave it" in topic
    state = await owner.state(room_id, "io.bazaar.context")
    assert state["supplied_by"] == "buyer" and "price" not in state and "status" not in state

    # The marketplace's own word replaces it, price and all.
    await marketplace.ok(
        "PUT", f"/conversations/{started['conversation_id']}/context", product(price="24.90")
    )

    async def marketplace_topic() -> bool:
        topic = (await owner.state(room_id, "m.room.topic"))["topic"]
        return "24.90" in topic and "buyer" not in topic

    await owner.wait_until_async(marketplace_topic, what="the marketplace's topic")


async def test_the_widget_comes_back_to_an_order_conversation_the_marketplace_opened(
    runner: BridgeRunner,
    sites: Sites,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    await with_seller(marketplace, owner)
    await marketplace.ok("PUT", "/buyers/b1", {"name": "Bob"})
    opened = await marketplace.ok(
        "POST", "/conversations", {"seller_id": "acme", "buyer_id": "b1", "context": FORGED_ORDER}
    )
    buyer = BuyerClient(runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "b1"))
    try:
        status, found = await buyer.call(
            "POST",
            "/conversations",
            {"seller_id": "acme", "context": {**FORGED_ORDER, "status": "REFUNDED"}},
        )
    finally:
        await buyer.close()
    assert status == 200, found
    assert found["conversation_id"] == opened["conversation_id"]
    # The marketplace's order, untouched by what the page claimed.
    assert found["context"]["status"] == FORGED_ORDER["status"]
    assert "supplied_by" not in found["context"]
