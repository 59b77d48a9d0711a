"""Blocking, enforced by the homeserver: power levels say who may post, for real."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import nio
import pytest

from tests.conftest import SITE, BridgeRunner, Homeserver, Sites, product
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]
GHOST = "@bazaar_shop_anna:localhost"


async def two_conversations(
    marketplace: MarketplaceClient, owner: SellerClient
) -> list[dict[str, Any]]:
    await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {"name": "ACME", "members": [{"user_id": owner.user_id, "role": "owner"}]},
    )
    await marketplace.ok("PUT", "/buyers/anna", {"name": "Anna"})
    conversations = []
    for product_id in ("kettle-1", "mug-2"):
        conversations.append(
            await marketplace.ok(
                "POST",
                "/conversations",
                {"seller_id": "acme", "buyer_id": "anna", "context": product(product_id)},
            )
        )
    for conversation in conversations:
        await owner.wait_until(lambda c=conversation: c["room_id"] in owner.invites, what="invite")
        await owner.accept_invite(conversation["room_id"])
    return conversations


async def ghost_send(homeserver: Homeserver, room_id: str, text: str) -> int:
    """What happens when the bridge (or anyone with its token) tries to post as the buyer."""
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            f"{homeserver.synapse.address}/_matrix/client/v3/rooms/{room_id}/send/m.room.message/{text}",
            params={"user_id": GHOST},
            json={"msgtype": "m.text", "body": text},
            headers={"Authorization": f"Bearer {homeserver.as_token}"},
        ) as response,
    ):
        return response.status


async def test_a_seller_blocks_a_buyer_with_a_confirmed_command_and_unblocks(
    homeserver: Homeserver,
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    first, second = await two_conversations(marketplace, owner)
    room_id = first["room_id"]

    def notices() -> list[str]:
        return [
            m["content"]["body"]
            for m in owner.messages(room_id)
            if m["content"].get("msgtype") == "m.notice"
        ]

    await owner.send_text(room_id, "!block")
    await owner.wait_until(
        lambda: any("!block confirm" in n for n in notices()), what="the question"
    )
    assert (await marketplace.ok("GET", f"/conversations/{first['conversation_id']}"))[
        "state"
    ] == "active"
    await owner.send_text(room_id, "!block confirm")
    await owner.wait_until(lambda: any(n.startswith("Blocked.") for n in notices()), what="blocked")

    for conversation in (first, second):

        async def ghost_muted(conversation: dict[str, Any] = conversation) -> bool:
            levels = await owner.state(conversation["room_id"], "m.room.power_levels")
            state = await owner.state(conversation["room_id"], "io.bazaar.conversation")
            return bool(levels["users"].get(GHOST) == -1 and state["state"] == "blocked")

        await owner.wait_until_async(ghost_muted, what="the ghost at -1 in a blocked room")
        # The homeserver itself refuses the buyer's ghost.
        assert await ghost_send(homeserver, conversation["room_id"], "sneaky") == 403

    status, error = await marketplace.call(
        "POST",
        f"/conversations/{first['conversation_id']}/messages",
        {"text": "hi", "client_id": "x"},
    )
    assert (status, error["errcode"]) == (403, "BAZAAR_BLOCKED")
    blocked = await marketplace.ok("GET", "/conversations", params={"state": "blocked"})
    assert {c["conversation_id"] for c in blocked["conversations"]} == {
        first["conversation_id"],
        second["conversation_id"],
    }
    changes = await webhooks.wait_for("conversation.state", count=2)
    assert {c["conversation"]["state"] for c in changes} == {"blocked"}

    await owner.send_text(room_id, "!unblock")
    await owner.wait_until(
        lambda: any(n.startswith("Unblocked.") for n in notices()), what="unblocked"
    )

    async def ghost_back() -> bool:
        levels = await owner.state(second["room_id"], "m.room.power_levels")
        return bool(levels["users"].get(GHOST) == 0)

    await owner.wait_until_async(ghost_back, what="the ghost back at 0")
    await marketplace.ok(
        "POST",
        f"/conversations/{second['conversation_id']}/messages",
        {"text": "Thanks!", "client_id": "t"},
    )
    await owner.wait_until(
        lambda: any(
            m["content"].get("body") == "Thanks!" for m in owner.messages(second["room_id"])
        ),
        what="the buyer's message after unblocking",
    )


async def test_a_buyer_blocks_the_seller_from_the_widget(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    sites: Sites,
    new_seller: NewSeller,
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    first, _ = await two_conversations(marketplace, owner)
    room_id = first["room_id"]
    anna = BuyerClient(runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "anna"))
    try:
        view = await anna.ok("POST", f"/conversations/{first['conversation_id']}/block")
        assert view["state"] == "blocked"

        async def members_muted() -> bool:
            levels = await owner.state(room_id, "m.room.power_levels")
            return bool(levels.get("events_default", 0) > levels["users"][owner.user_id])

        await owner.wait_until_async(members_muted, what="the members unable to post")
        await owner.wait_until(
            lambda: any(
                m["content"].get("body", "").startswith("The buyer has blocked")
                for m in owner.messages(room_id)
            ),
            what="the bot telling the seller",
        )
        refused = await owner.client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": "Hello?"}
        )
        assert isinstance(refused, nio.RoomSendError), refused
        listed = await anna.ok("GET", "/conversations")
        assert {c["state"] for c in listed["conversations"]} == {"blocked"}

        await anna.ok("POST", f"/conversations/{first['conversation_id']}/unblock")

        async def members_back() -> bool:
            levels = await owner.state(room_id, "m.room.power_levels")
            return bool(levels.get("events_default", 0) == 0)

        await owner.wait_until_async(members_back, what="the members able to post again")
        await owner.send_text(room_id, "Sorry for the wait!")
        frames = await anna.stream(since=0)
        reply = await frames.next_of("message.created", message__text="Sorry for the wait!")
        assert reply["message"]["sender"] == "seller"
        await frames.close()
    finally:
        await anna.close()
