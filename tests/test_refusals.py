"""What the homeserver refuses for good fails, saying why, instead of waiting forever."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.core.ids import BuyerID, SellerID, SiteID, new_conversation_id, new_message_id
from bridge.core.models import (
    Buyer,
    ContextType,
    Conversation,
    ConversationState,
    Message,
    MessageStatus,
    SenderKind,
)
from bridge.core.models import Context as ConversationContext
from tests.conftest import SITE, BridgeRunner
from tests.support.journeys import open_conversation
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]

# Stored by a bridge from before buyer ids were checked: 150 capitals escape to 300
# characters, a ghost id far over Matrix's 255 bytes. Synapse registers it all the same but
# refuses it a room (its membership's state key is too large).
LEGACY_BUYER = BuyerID("Q" * 150)
# What Synapse answers, as registration or room creation meets the id first.
TOO_LONG_REFUSALS = ("M_INVALID_USERNAME", "M_TOO_LARGE")


async def test_messages_of_a_room_the_homeserver_will_never_make_fail_with_the_reason(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    # A conversation the homeserver takes, to show the courier goes on with the others.
    working = await open_conversation(marketplace, owner)
    site = SiteID(SITE)
    await bridge.repository.put_buyer(Buyer(site, LEGACY_BUYER, "Old account"))
    legacy, _ = await bridge.repository.create_conversation(
        Conversation(
            site=site,
            conversation_id=new_conversation_id(),
            seller_id=SellerID("acme"),
            buyer_id=LEGACY_BUYER,
            context=ConversationContext(ContextType.GENERAL, "help", "A question"),
            state=ConversationState.ACTIVE,
            room_id=None,
            created_at=datetime.now(UTC),
        ),
        (),
    )
    for n, text in enumerate(["Hello?", "Anyone there?"]):
        await bridge.repository.add_message(
            Message(
                message_id=new_message_id(),
                conversation_id=legacy.conversation_id,
                sender=SenderKind.BUYER,
                sender_name="Old account",
                text=text,
                lang="en",
                status=MessageStatus.PENDING,
                created_at=datetime.now(UTC),
                client_id=f"old-{n}",
            ),
            (),
        )
    # The upgraded bridge starts with those messages waiting.
    await runner.stop(bridge)
    await runner.start()
    path = f"/conversations/{legacy.conversation_id}/messages"

    async def settled() -> list[dict[str, Any]] | None:
        messages: list[dict[str, Any]] = (await marketplace.ok("GET", path))["messages"]
        return None if any(m["status"] == "pending" for m in messages) else messages

    messages = await eventually(settled, what="the legacy messages settled")
    assert [(m["text"], m["status"]) for m in messages] == [
        ("Hello?", "failed"),
        ("Anyone there?", "failed"),
    ]
    for message in messages:
        assert message["error"].startswith("The conversation's room can't be made"), message
        assert any(code in message["error"] for code in TOO_LONG_REFUSALS), message
    statuses = await webhooks.wait_for("message.status", count=2)
    assert {(e["message"]["text"], e["message"]["status"]) for e in statuses} == {
        ("Hello?", "failed"),
        ("Anyone there?", "failed"),
    }
    assert all(
        e["message"]["error"].startswith("The conversation's room can't be made") for e in statuses
    )

    working_path = f"/conversations/{working['conversation_id']}/messages"
    sent = await marketplace.ok("POST", working_path, {"text": "Still here", "client_id": "w1"})

    async def delivered() -> str | None:
        [message] = (await marketplace.ok("GET", working_path))["messages"]
        return None if message["status"] == "pending" else str(message["status"])

    assert await eventually(delivered, what="the other conversation's message") == "sent"
    [listed] = (await marketplace.ok("GET", working_path))["messages"]
    assert (listed["message_id"], listed["error"]) == (sent["message_id"], None)
