"""Blocking, enforced by the homeserver: power levels say who may post, for real."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import nio
import pytest

from tests.conftest import SITE, BridgeRunner, Homeserver, Sites, product
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.journeys import GHOST, two_conversations
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]


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
            owner_level = await owner.level(room_id, owner.user_id)
            return bool(levels.get("events_default", 0) > owner_level)

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


async def test_each_side_lifts_only_its_own_block_and_is_told_only_of_real_changes(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    sites: Sites,
    new_seller: NewSeller,
) -> None:
    """`blocked_by` in every view, frame and webhook; a repeat or an unblock of a block that
    side never set changes nothing and tells nobody."""
    await runner.start()
    owner = await new_seller("owner")
    first, second = await two_conversations(marketplace, owner)
    room_id, first_id = first["room_id"], first["conversation_id"]
    anna = BuyerClient(runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "anna"))
    frames = await anna.stream()
    said: list[str] = []

    def notices() -> list[str]:
        return [
            m["content"]["body"]
            for m in owner.messages(room_id)
            if m["content"].get("msgtype") == "m.notice" and "io.bazaar.card" not in m["content"]
        ]

    async def room_says(*texts: str) -> None:
        """The bot's notices in the room are, in order, what was said so far and `texts`."""
        said.extend(texts)
        await owner.wait_until(lambda: notices() == said, what=f"the notices {said}")

    async def command(text: str, answer: str) -> None:
        await owner.send_text(room_id, text)
        await room_says(answer)

    async def blocked_by_everywhere() -> tuple[str, list[str]]:
        """State and `blocked_by` of the first conversation, the same in both APIs and the
        same for every conversation of the pair."""
        listed = (await anna.ok("GET", "/conversations"))["conversations"]
        sellers = (await marketplace.ok("GET", "/conversations", params={"buyer_id": "anna"}))[
            "conversations"
        ]
        seen = {(c["state"], tuple(c["blocked_by"])) for c in [*listed, *sellers]}
        assert len(seen) == 1, seen
        state, blocked_by = seen.pop()
        return state, list(blocked_by)

    try:
        await command("!unblock", "This buyer is not blocked.")
        assert await blocked_by_everywhere() == ("active", [])

        # The seller blocks in Matrix: everyone can tell it was the seller.
        await command(
            "!block",
            "Block this buyer in all your conversations? Say !block confirm within 2 minutes.",
        )
        await command(
            "!block confirm",
            "Blocked. The buyer can no longer write to you in any conversation. "
            "Say !unblock to undo.",
        )
        frame = await frames.next_of("conversation.updated", conversation__conversation_id=first_id)
        assert (frame["conversation"]["state"], frame["conversation"]["blocked_by"]) == (
            "blocked",
            ["seller"],
        )
        assert await blocked_by_everywhere() == ("blocked", ["seller"])
        await command("!block", "This buyer is already blocked. Say !unblock to undo.")

        # The buyer's unblock can't lift the seller's block: nothing changes, nobody is told.
        [before] = [
            c
            for c in (await anna.ok("GET", "/conversations"))["conversations"]
            if c["conversation_id"] == first_id
        ]
        assert await anna.ok("POST", f"/conversations/{first_id}/unblock") == before

        # A conversation the buyer opens now starts closed by the seller.
        opened = await anna.ok(
            "POST", "/conversations", {"seller_id": "acme", "context": product("teapot-3")}
        )
        assert (opened["state"], opened["blocked_by"]) == ("blocked", ["seller"])

        # The buyer blocks too: both sides block; a repeat (here by the marketplace on the
        # buyer's behalf) is no news.
        both = await anna.ok("POST", f"/conversations/{first_id}/block")
        assert (both["state"], both["blocked_by"]) == ("blocked", ["buyer", "seller"])
        await room_says("The buyer has blocked this conversation: messages can't be sent.")
        again = await marketplace.ok("POST", f"/conversations/{first_id}/block", {"by": "buyer"})
        assert (again["state"], again["blocked_by"]) == ("blocked", ["buyer", "seller"])

        # The buyer lifts their block; the seller's stands, and the sellers are told so.
        lifted = await marketplace.ok("POST", f"/conversations/{first_id}/unblock", {"by": "buyer"})
        assert (lifted["state"], lifted["blocked_by"]) == ("blocked", ["seller"])
        await room_says(
            "The buyer has lifted their block; yours still stands. "
            "Say !unblock to let them write again."
        )

        # The room lets the members post again a moment after the notice (the courier
        # brings its power levels in line); a person reads the notice first.
        async def members_may_post() -> bool:
            levels = await owner.state(room_id, "m.room.power_levels")
            return levels.get("events_default", 0) == 0

        await owner.wait_until_async(members_may_post, what="the members' voice back")
        await command("!unblock", "Unblocked. The buyer can write to you again.")
        assert await blocked_by_everywhere() == ("active", [])

        # Unblocking again, from either side, is no news either.
        open_again = await anna.ok("POST", f"/conversations/{first_id}/unblock")
        assert (open_again["state"], open_again["blocked_by"]) == ("active", [])
        await command("!unblock", "This buyer is not blocked.")

        # A last real change, so that anything the repeats had sent would show before it.
        mine = await anna.ok("POST", f"/conversations/{first_id}/block")
        assert (mine["state"], mine["blocked_by"]) == ("blocked", ["buyer"])
        await room_says("The buyer has blocked this conversation: messages can't be sent.")
        await frames.next_of(
            "conversation.updated",
            conversation__conversation_id=first_id,
            conversation__blocked_by=["buyer"],
        )
        changes = [
            (f["conversation"]["state"], f["conversation"]["blocked_by"])
            for f in frames.frames
            if f["type"] == "conversation.updated" and f["conversation_id"] == first_id
        ]
        expected = [
            ("blocked", ["seller"]),
            ("blocked", ["buyer", "seller"]),
            ("blocked", ["seller"]),
            ("active", []),
            ("blocked", ["buyer"]),
        ]
        assert changes == expected

        # The marketplace heard of the same changes, for each conversation of the pair.
        def told(conversation_id: str) -> list[tuple[str, list[str]]]:
            return [
                (e["conversation"]["state"], e["conversation"]["blocked_by"])
                for e in webhooks.of_type("conversation.state")
                if e["conversation_id"] == conversation_id
            ]

        await webhooks.wait_for("conversation.state", count=len(expected) * 2 + 4)
        assert told(first_id) == expected
        assert told(second["conversation_id"]) == expected
        # The one opened while blocked was created blocked, then followed the rest.
        assert told(opened["conversation_id"]) == expected[1:]
        await frames.close()
    finally:
        await anna.close()
