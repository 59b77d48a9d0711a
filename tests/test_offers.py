"""Offers from the chat: a member's `!offer` reaches the marketplace as `offer.created`, its
answer opens the offer for the buyer (a system message and a card with the checkout) and
each status change is told in the room once; bad commands and answers change nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import SITE, BridgeRunner, Sites
from tests.support.journeys import anna_in, open_conversation
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]
CHECKOUT = "https://shop.example/checkout/offer?o=1&x=<b>"


def notices(seller: SellerClient, room_id: str) -> list[str]:
    return [
        m["content"]["body"]
        for m in seller.messages(room_id)
        if m["content"].get("msgtype") == "m.notice"
        and m["sender"] != seller.user_id
        and "io.bazaar.card" not in m["content"]
    ]


async def team_in_room(
    marketplace: MarketplaceClient, new_seller: NewSeller
) -> tuple[SellerClient, SellerClient, dict[str, Any]]:
    owner, manager = await new_seller("owner"), await new_seller("manager")
    conversation = await open_conversation(marketplace, owner, manager=manager)
    room_id = conversation["room_id"]
    for member in (owner, manager):
        await member.wait_until(lambda m=member: room_id in m.invites, what="the invite")
        await member.accept_invite(room_id)
    return owner, manager, conversation


async def general_room_of(marketplace: MarketplaceClient, owner: SellerClient) -> str:
    """A conversation with Bob about nothing in particular (no price, no currency), with the
    owner in its room."""
    await marketplace.ok("PUT", "/buyers/Bob", {"name": "Bob"})
    general = await marketplace.ok(
        "POST",
        "/conversations",
        {
            "seller_id": "acme",
            "buyer_id": "Bob",
            "context": {"type": "general", "id": "g", "title": "Hi"},
        },
    )
    room_id = str(general["room_id"])
    await owner.wait_until(lambda: room_id in owner.invites, what="the invite")
    await owner.accept_invite(room_id)
    return room_id


async def test_a_managers_offer_reaches_the_marketplace_and_its_answer_both_sides(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
    sites: Sites,
) -> None:
    await runner.start()
    _, manager, conversation = await team_in_room(marketplace, new_seller)
    conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]

    await manager.send_text(room_id, "!offer")
    (created,) = await webhooks.wait_for("offer.created")
    offer = created["offer"]
    assert (offer["title"], offer["quantity"], offer["price"], offer["currency"]) == (
        "Electric kettle 1.7 l",
        1,
        "24.90",
        "EUR",
    )
    assert (offer["status"], offer["product_id"], offer["created_by"]) == (
        "pending",
        "kettle-1",
        manager.user_id,
    )
    await manager.send_text(room_id, "!offer 3 19,90")
    second = (await webhooks.wait_for("offer.created", 2))[1]["offer"]
    assert (second["quantity"], second["price"], second["total"]) == (3, "19.90", "59.70")
    await manager.wait_until(
        lambda: sum("went to the marketplace" in n for n in notices(manager, room_id)) == 2,
        what="both answers to !offer",
    )

    anna = await anna_in(runner, sites)
    try:
        cards_path = f"/conversations/{conversation_id}/cards"
        assert (await anna.ok("GET", cards_path))["offers"] == []  # pending: not the buyer's yet

        path = f"/conversations/{conversation_id}/offers/{second['offer_id']}"
        opened = await marketplace.ok("PUT", path, {"status": "open", "checkout_url": CHECKOUT})
        assert (opened["status"], opened["checkout_url"]) == ("open", CHECKOUT)
        again = await marketplace.ok("PUT", path, {"status": "open", "checkout_url": CHECKOUT})
        assert again["updated_at"] == opened["updated_at"]  # the same answer changes nothing

        (card,) = (await anna.ok("GET", cards_path))["offers"]
        assert (card["offer_id"], card["status"], card["checkout_url"], card["total"]) == (
            second["offer_id"],
            "open",
            CHECKOUT,
            "59.70",
        )
        assert "created_by" not in card
        listed = await anna.ok("GET", f"/conversations/{conversation_id}/messages")
        assert [m["text"] for m in listed["messages"] if m["sender"] == "system"] == [
            "The seller offers you 3 × Electric kettle 1.7 l: 59.70 EUR"
        ]

        await marketplace.ok("PUT", path, {"status": "accepted"})
        status, error = await marketplace.call("PUT", path, {"status": "open"})
        assert (status, error["errcode"]) == (409, "BAZAAR_OFFER_STATUS_BACKWARDS")

        opened_notice = f"Offer {second['offer_id']} (3 × Electric kettle 1.7 l, 59.70 EUR)"
        await manager.wait_until(
            lambda: f"{opened_notice}: accepted" in notices(manager, room_id),
            what="the accepted notice",
        )
        # The buyer writes after the last change: once it is in the room, the courier has
        # posted everything owed before it, so a doubled notice would show by now.
        await anna.ok(
            "POST",
            f"/conversations/{conversation_id}/messages",
            {"text": "Bought it, thanks", "client_id": "b-1"},
        )
        await manager.wait_until(
            lambda: any(
                m["content"].get("body") == "Bought it, thanks" for m in manager.messages(room_id)
            ),
            what="the buyer's message",
        )
        await manager.sync_once()
        told = [n for n in notices(manager, room_id) if n.startswith(opened_notice)]
        assert told == [
            f"{opened_notice} is open: the buyer sees it with a Buy button",
            f"{opened_notice}: accepted",
        ]
        state = await manager.state(room_id, "io.bazaar.offer", second["offer_id"])
        assert (state["status"], state["checkout_url"], state["total"]) == (
            "accepted",
            CHECKOUT,
            "59.70",
        )
        (card,) = (await anna.ok("GET", cards_path))["offers"]
        assert card["status"] == "accepted"
    finally:
        await anna.close()

    listed = await marketplace.ok("GET", f"/conversations/{conversation_id}/offers")
    assert [(o["quantity"], o["status"]) for o in listed["offers"]] == [
        (1, "pending"),
        (3, "accepted"),
    ]
    updates = await webhooks.wait_for("offer.updated", 2)
    assert [u["offer"]["status"] for u in updates] == ["open", "accepted"]


async def test_bad_answers_store_nothing(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
) -> None:
    await runner.start()
    _, manager, conversation = await team_in_room(marketplace, new_seller)
    conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]
    await manager.send_text(room_id, "!offer 2")
    (created,) = await webhooks.wait_for("offer.created")
    path = f"/conversations/{conversation_id}/offers/{created['offer']['offer_id']}"

    for bad in (
        {"status": "pending"},
        {"status": "sold"},
        {"status": "open"},  # the buyer's Buy button needs a checkout
        {"status": "open", "checkout_url": "javascript:alert(1)"},
        {"status": "open", "checkout_url": CHECKOUT, "price": "12,50"},
        {"status": "open", "checkout_url": CHECKOUT, "quantity": 0},
        {"status": "open", "checkout_url": CHECKOUT, "currency": "eur"},
        ["open"],
    ):
        status, error = await marketplace.call("PUT", path, bad)
        assert status == 400, (bad, error)
        assert error["errcode"] and error["error"]
    status, error = await marketplace.call(
        "PUT", f"/conversations/{conversation_id}/offers/o-unknown", {"status": "expired"}
    )
    assert (status, error["errcode"]) == (404, "BAZAAR_UNKNOWN_OFFER")
    status, error = await marketplace.call(
        "PUT", "/conversations/nope/offers/x", {"status": "open"}
    )
    assert (status, error["errcode"]) == (404, "BAZAAR_UNKNOWN_CONVERSATION")
    (stored,) = (await marketplace.ok("GET", f"/conversations/{conversation_id}/offers"))["offers"]
    assert (stored["status"], stored["checkout_url"], stored["quantity"]) == ("pending", None, 2)


async def test_offer_commands_that_cant_be_done_say_why(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
) -> None:
    bridge = await runner.start()
    owner, _, conversation = await team_in_room(marketplace, new_seller)
    conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]
    said: list[str] = []

    async def answers(text: str, first_line: str) -> None:
        await owner.send_text(room_id, text)
        await owner.wait_until(lambda: len(notices(owner, room_id)) > len(said), what=text)
        said[:] = notices(owner, room_id)
        assert said[-1].split("\n")[0] == first_line, (text, said[-1])

    await answers("!offer lots", "The quantity must be a whole number from 1 to 1,000,000")
    await answers("!offer 0", "The quantity must be a whole number from 1 to 1,000,000")
    await answers("!offer 2 cheap", "The price must be a number such as 39.90")
    await answers("!offer 2 9.99 euros", "The currency must be a three-letter code such as EUR")
    await answers(
        "!offer 1 2 EUR more",
        "Say at most a quantity, a price and a currency, e.g. !offer 3 39.90 EUR",
    )

    general_room = await general_room_of(marketplace, owner)
    await owner.send_text(general_room, "!offer 2")
    await owner.wait_until(
        lambda: any("has no price" in n for n in notices(owner, general_room)), what="no price"
    )
    await owner.send_text(general_room, "!offer 2 10")
    await owner.wait_until(
        lambda: any(n.startswith("Say the currency too") for n in notices(owner, general_room)),
        what="no currency",
    )

    await marketplace.ok("POST", f"/conversations/{conversation_id}/block", {})
    await answers("!offer", "This conversation is blocked: no offer was made")
    await marketplace.ok("POST", f"/conversations/{conversation_id}/unblock", {})
    await bridge.archive.sweep(datetime.now(UTC) + timedelta(days=30))
    await answers("!offer", "This conversation is archived: no offer was made")

    assert webhooks.of_type("offer.created") == []
    assert (await marketplace.ok("GET", f"/conversations/{conversation_id}/offers"))["offers"] == []


async def test_the_sites_currency_serves_where_the_context_names_none(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
) -> None:
    runner.config = replace(
        runner.config,
        sites=tuple(
            replace(site, currency="KZT") if site.id == SITE else site
            for site in runner.config.sites
        ),
    )
    await runner.start()
    owner = await new_seller("owner")
    await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {"name": "ACME", "members": [{"user_id": owner.user_id, "role": "owner"}]},
    )
    room_id = await general_room_of(marketplace, owner)
    await owner.send_text(room_id, "!offer 2 4500")
    (created,) = await webhooks.wait_for("offer.created")
    offer = created["offer"]
    assert (offer["quantity"], offer["price"], offer["currency"], offer["total"]) == (
        2,
        "4500",
        "KZT",
        "9000",
    )
