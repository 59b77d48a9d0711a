"""A buyer's question reaches the seller's Matrix client and the reply comes back, for real."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import nio
import pytest

from tests.conftest import SITE, BridgeRunner, product
from tests.support.journeys import joined_conversation, open_conversation
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.shop import ShopServer, tiny_png
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]


async def test_buyer_question_arrives_in_sellers_room_with_state(
    runner_on_each_database: BridgeRunner,
    sites: Any,
    new_seller: NewSeller,
) -> None:
    await runner_on_each_database.start()
    marketplace = MarketplaceClient(
        runner_on_each_database.config.web.public_url, SITE, sites.api_token
    )
    try:
        owner = await new_seller("owner")
        staff = await new_seller("staff")
        conversation = await open_conversation(marketplace, owner, staff=staff)
        room_id = conversation["room_id"]
        assert room_id, "the room is made while the marketplace waits"

        await owner.wait_until(lambda: room_id in owner.invites, what="the invite")
        await owner.accept_invite(room_id)

        assert (await owner.state(room_id, "m.room.name"))["name"] == (
            "Anna K. · Electric kettle 1.7 l"
        )
        assert (
            "https://shop.example/p/kettle-1"
            in (await owner.state(room_id, "m.room.topic"))["topic"]
        )
        assert await owner.state(room_id, "io.bazaar.conversation") == {
            "site": SITE,
            "conversation_id": conversation["conversation_id"],
            "seller_id": "acme",
            "buyer_id": "Anna_K",
            "state": "active",
            "labels": [],
            "assignee": None,
        }
        assert (await owner.state(room_id, "io.bazaar.context"))["title"] == "Electric kettle 1.7 l"
        bridge_key = f"io.bazaar://{SITE}/{conversation['conversation_id']}"
        for kind in ("m.bridge", "uk.half-shot.bridge"):
            info = await owner.state(room_id, kind, bridge_key)
            assert info["channel"]["id"] == conversation["conversation_id"]
        levels = await owner.state(room_id, "m.room.power_levels")
        ghost = "@bazaar_shop__anna___k:localhost"
        assert await owner.level(room_id, owner.user_id) == 50
        assert await owner.level(room_id, ghost) == 0
        # Staff don't answer: never invited, so the members' level reaches them nowhere.
        staff_member = await owner.client.room_get_state_event(
            room_id, "m.room.member", staff.user_id
        )
        assert isinstance(staff_member, nio.RoomGetStateEventError), staff_member
        assert (levels["invite"], levels["kick"], levels["ban"]) == (100, 100, 100)
        ghost_member = await owner.state(room_id, "m.room.member", ghost)
        assert ghost_member["membership"] == "join"
        assert ghost_member["displayname"] == "Anna K."

        message = await marketplace.ok(
            "POST",
            f"/conversations/{conversation['conversation_id']}/messages",
            {"text": "Is the kettle in stock?", "client_id": "q-1"},
        )
        seen = await owner.wait_until(
            lambda: [m for m in owner.messages(room_id) if m["sender"] == ghost],
            what="the buyer's message",
        )
        assert seen[0]["content"]["body"] == "Is the kettle in stock?"
        assert seen[0]["content"]["io.bazaar.message_id"] == message["message_id"]

        await staff.sync_once()
        assert room_id not in staff.invites, "staff is not an allowed role"
    finally:
        await marketplace.close()


async def test_seller_reply_edit_and_redaction_reach_api_and_webhook(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    conversation = await open_conversation(marketplace, owner)
    conversation_id = conversation["conversation_id"]
    room_id = conversation["room_id"]
    await owner.wait_until(lambda: room_id in owner.invites, what="the invite")
    await owner.accept_invite(room_id)

    event_id = await owner.send_text(room_id, "Yes, we ship it tomorrow.")
    created = await webhooks.wait_for("message.created")
    reply = next(e for e in created if e["message"]["sender"] == "seller")
    assert reply["site"] == SITE
    assert reply["conversation_id"] == conversation_id
    assert reply["message"]["text"] == "Yes, we ship it tomorrow."
    assert reply["message"]["sender_name"] == "owner"
    assert webhooks.bad_signatures == 0

    listed = await marketplace.ok("GET", f"/conversations/{conversation_id}/messages")
    assert [(m["sender"], m["text"]) for m in listed["messages"]] == [
        ("seller", "Yes, we ship it tomorrow.")
    ]

    await owner.send(
        room_id,
        {
            "msgtype": "m.text",
            "body": "* Yes, we ship it today.",
            "m.new_content": {"msgtype": "m.text", "body": "Yes, we ship it today."},
            "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
        },
    )
    updated = await webhooks.wait_for("message.updated")
    assert updated[0]["message"]["text"] == "Yes, we ship it today."
    listed = await marketplace.ok("GET", f"/conversations/{conversation_id}/messages")
    assert listed["messages"][0]["text"] == "Yes, we ship it today."
    assert listed["messages"][0]["edited_at"] is not None

    await owner.redact(room_id, event_id)
    deleted = await webhooks.wait_for("message.deleted")
    assert deleted[0]["message"]["message_id"] == reply["message"]["message_id"]
    listed = await marketplace.ok("GET", f"/conversations/{conversation_id}/messages")
    assert listed["messages"] == []


async def test_context_update_follows_into_room_state(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    conversation = await joined_conversation(marketplace, owner)
    room_id = conversation["room_id"]

    changed = product(title="Electric kettle 1.7 l, steel", price="19.90", status="on sale")
    answer = await marketplace.ok(
        "PUT", f"/conversations/{conversation['conversation_id']}/context", changed
    )
    assert answer["context"]["price"] == "19.90"

    def state_event(kind: str) -> dict[str, Any] | None:
        found = [e for e in owner.events.get(room_id, []) if e.get("type") == kind]
        return found[-1]["content"] if found else None

    await owner.wait_until(
        lambda: (
            (state_event("m.room.topic") or {})
            .get("topic", "")
            .startswith("Product: Electric kettle 1.7 l, steel")
        ),
        what="the new topic",
    )
    context = await owner.state(room_id, "io.bazaar.context")
    assert (context["price"], context["status"]) == ("19.90", "on sale")
    assert (await owner.state(room_id, "m.room.name"))["name"] == (
        "Anna K. · Electric kettle 1.7 l, steel"
    )

    status, error = await marketplace.call(
        "PUT", f"/conversations/{conversation['conversation_id']}/context", product("other")
    )
    assert status == 409 and error["errcode"] == "BAZAAR_CONTEXT_MISMATCH"


async def test_concurrent_questions_keep_their_stored_order_in_each_room(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    first = await open_conversation(marketplace, owner, buyer_id="b-one")
    second = await open_conversation(marketplace, owner, buyer_id="b-two")
    conversations = [first, second]
    for conversation in conversations:
        await owner.wait_until(lambda c=conversation: c["room_id"] in owner.invites, what="invite")
        await owner.accept_invite(conversation["room_id"])

    async def ask(conversation: dict[str, Any], n: int) -> None:
        await marketplace.ok(
            "POST",
            f"/conversations/{conversation['conversation_id']}/messages",
            {"text": f"q{n}", "client_id": f"q{n}"},
        )

    await asyncio.gather(*(ask(c, n) for n in range(15) for c in conversations))
    for conversation in conversations:
        room_id = conversation["room_id"]
        stored = await marketplace.ok(
            "GET", f"/conversations/{conversation['conversation_id']}/messages"
        )
        stored_ids = [m["message_id"] for m in stored["messages"]]
        assert len(stored_ids) == 15

        def bridged(room_id: str = room_id) -> list[str]:
            return [
                m["content"]["io.bazaar.message_id"]
                for m in owner.messages(room_id)
                if "io.bazaar.message_id" in m["content"]
            ]

        await owner.wait_until(lambda b=bridged: len(b()) == 15, what="15 questions")
        assert bridged() == stored_ids


async def test_the_product_image_becomes_the_room_avatar(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    shop = ShopServer()
    await shop.start()
    try:
        picture = tiny_png()
        image_url = shop.add("kettle.png", picture, "image/png")
        # An HTML page passed off as an image never becomes an avatar.
        fake_url = shop.add("fake.png", b"<html><script>alert(1)</script></html>", "image/png")
        owner = await new_seller("owner")
        await marketplace.ok(
            "PUT",
            "/sellers/acme",
            {"name": "ACME", "members": [{"user_id": owner.user_id, "role": "owner"}]},
        )
        await marketplace.ok("PUT", "/buyers/b1", {"name": "Bob"})
        with_image = await marketplace.ok(
            "POST",
            "/conversations",
            {
                "seller_id": "acme",
                "buyer_id": "b1",
                "context": product("p-img", image_url=image_url),
            },
        )
        with_fake = await marketplace.ok(
            "POST",
            "/conversations",
            {
                "seller_id": "acme",
                "buyer_id": "b1",
                "context": product("p-fake", image_url=fake_url),
            },
        )
        for conversation in (with_image, with_fake):
            await owner.wait_until(
                lambda c=conversation: c["room_id"] in owner.invites, what="invite"
            )
            await owner.accept_invite(conversation["room_id"])

        avatar = await owner.state(with_image["room_id"], "m.room.avatar")
        assert avatar["url"].startswith("mxc://")
        downloaded = await owner.client.download(mxc=avatar["url"])
        assert isinstance(downloaded, nio.DownloadResponse), downloaded
        assert downloaded.body == picture
        response = await owner.client.room_get_state_event(with_fake["room_id"], "m.room.avatar")
        assert isinstance(response, nio.RoomGetStateEventError)
        assert response.status_code == "M_NOT_FOUND"
    finally:
        await shop.stop()


async def test_the_topic_names_the_kind_only_where_the_title_does_not(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {"name": "ACME", "members": [{"user_id": owner.user_id, "role": "owner"}]},
    )
    await marketplace.ok("PUT", "/buyers/b1", {"name": "Bob"})
    topics = {}
    for order_id, title in (("A-1001", "Order A-1001"), ("A-1002", "Kettle and two mugs")):
        conversation = await marketplace.ok(
            "POST",
            "/conversations",
            {
                "seller_id": "acme",
                "buyer_id": "b1",
                "context": {"type": "order", "id": order_id, "title": title, "status": "paid"},
            },
        )
        await owner.wait_until(lambda c=conversation: c["room_id"] in owner.invites, what="invite")
        await owner.accept_invite(conversation["room_id"])
        topics[order_id] = (await owner.state(conversation["room_id"], "m.room.topic"))["topic"]

    assert topics == {
        "A-1001": "Order A-1001 · paid",
        "A-1002": "Order: Kettle and two mugs · paid",
    }
