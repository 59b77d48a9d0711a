"""Quiet conversations are archived (the clock is driven, not waited for) and wake up again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import BridgeRunner
from tests.support.journeys import two_conversations
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]


async def test_quiet_conversations_are_archived_and_a_message_wakes_them(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    first, second = await two_conversations(marketplace, owner)
    await marketplace.ok(
        "POST",
        f"/conversations/{first['conversation_id']}/messages",
        {"text": "hi", "client_id": "a"},
    )

    # Six days on, nothing is archived yet; eight days on, both are.
    assert await bridge.archive.sweep(datetime.now(UTC) + timedelta(days=6)) == []
    archived = await bridge.archive.sweep(datetime.now(UTC) + timedelta(days=8))
    assert {c.conversation_id for c in archived} == {
        first["conversation_id"],
        second["conversation_id"],
    }
    listed = await marketplace.ok("GET", "/conversations", params={"state": "archived"})
    assert len(listed["conversations"]) == 2
    for conversation in (first, second):

        async def archived_in_room(room_id: str = conversation["room_id"]) -> bool:
            state = await owner.state(room_id, "io.bazaar.conversation")
            return bool(state["state"] == "archived")

        await owner.wait_until_async(archived_in_room, what="archived in the room state")
    changes = await webhooks.wait_for("conversation.state", count=2)
    assert {c["conversation"]["state"] for c in changes} == {"archived"}

    # The seller answers in one, the buyer writes in the other: both are active again.
    await owner.send_text(first["room_id"], "Still interested?")
    await marketplace.ok(
        "POST",
        f"/conversations/{second['conversation_id']}/messages",
        {"text": "Back!", "client_id": "b"},
    )
    for conversation in (first, second):

        async def active_again(conversation_id: str = conversation["conversation_id"]) -> bool:
            found = await marketplace.ok("GET", f"/conversations/{conversation_id}")
            return bool(found["state"] == "active")

        await owner.wait_until_async(active_again, what="active again")

        async def active_in_room(room_id: str = conversation["room_id"]) -> bool:
            state = await owner.state(room_id, "io.bazaar.conversation")
            return bool(state["state"] == "active")

        await owner.wait_until_async(active_in_room, what="active in the room state")
