"""Response times against a real Synapse: a buyer message puts the room into the seller's
Unanswered section and the owner's reply takes it out, the wait kept with its lengths;
reminders from a driven clock reach the management room with the room's link and mention
the owner in the room; `!noreply` closes a wait without an answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import nio
import pytest
from sqlalchemy import select

from bridge.core.ids import SellerID, SiteID
from bridge.store.schema import WaitRow
from tests.conftest import SITE, BridgeRunner
from tests.support.journeys import joined_conversation
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]


async def children(owner: SellerClient, space_id: str) -> set[str]:
    response = await owner.client.room_get_state(space_id)
    assert isinstance(response, nio.RoomGetStateResponse), response
    return {
        event["state_key"]
        for event in response.events
        if event["type"] == "m.space.child" and event["content"].get("via")
    }


def notices(owner: SellerClient, room_id: str) -> list[dict[str, Any]]:
    return [
        m["content"] for m in owner.messages(room_id) if m["content"].get("msgtype") == "m.notice"
    ]


async def test_the_unanswered_section_holds_the_rooms_a_buyer_waits_in(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    conversation = await joined_conversation(marketplace, owner)
    room_id, conversation_id = conversation["room_id"], conversation["conversation_id"]
    space = await bridge.repository.seller_space(SiteID(SITE), SellerID("acme"))
    assert space is not None
    await owner.wait_until(lambda: space.space_id in owner.invites, what="the Space's invite")
    await owner.accept_invite(space.space_id)
    before = await children(owner, space.space_id)

    await marketplace.ok(
        "POST",
        f"/conversations/{conversation_id}/messages",
        {"text": "In stock?", "client_id": "a"},
    )

    async def section_made() -> bool:
        return len(await children(owner, space.space_id) - before) == 1

    await owner.wait_until_async(section_made, what="the Unanswered section in the Space")
    (section,) = await children(owner, space.space_id) - before
    await owner.wait_until(lambda: section in owner.invites, what="the section's invite")
    await owner.accept_invite(section)
    assert (await owner.state(section, "m.room.name"))["name"] == "Unanswered · ACME · Test Shop"

    async def waiting() -> bool:
        return await children(owner, section) == {room_id}

    await owner.wait_until_async(waiting, what="the room in Unanswered")

    # The owner answers: the room leaves the section, the wait is kept with its lengths.
    await owner.send_text(room_id, "Yes, it is")

    async def answered() -> bool:
        return await children(owner, section) == set()

    await owner.wait_until_async(answered, what="the room out of Unanswered")
    async with bridge.repository._reads() as session:
        [wait] = (await session.scalars(select(WaitRow))).all()
    assert (wait.conversation_id, wait.outcome, wait.closed_by, wait.first) == (
        conversation_id,
        "replied",
        owner.user_id,
        True,
    )
    assert wait.wall_seconds is not None and 0 < wait.wall_seconds < 120
    # The seller has no working hours: always open, so both lengths agree.
    assert wait.working_seconds == pytest.approx(wait.wall_seconds)

    # The buyer writes again: back in Unanswered; the reminders come from the clock.
    await marketplace.ok(
        "POST", f"/conversations/{conversation_id}/messages", {"text": "In red?", "client_id": "b"}
    )
    await owner.wait_until_async(waiting, what="the room back in Unanswered")
    await owner.wait_until(
        lambda: space.management_id in owner.invites, what="the management room's invite"
    )
    await owner.accept_invite(space.management_id)

    now = datetime.now(UTC)
    assert await bridge.reminders.run_once(now + timedelta(hours=11)) == 0
    assert await bridge.reminders.run_once(now + timedelta(hours=12)) == 1
    assert await bridge.reminders.run_once(now + timedelta(hours=12)) == 0
    link = f"https://matrix.to/#/{room_id}"

    def reminded() -> bool:
        return any(link in n["body"] for n in notices(owner, space.management_id))

    await owner.wait_until(reminded, what="the reminder in the management room")
    [reminder] = [n for n in notices(owner, space.management_id) if link in n["body"]]
    assert reminder["body"].startswith("⏰ 1 conversation waits for an answer (target 24 h):")
    assert "Anna K. about" in reminder["body"]

    def mentioned() -> list[dict[str, Any]]:
        return [
            n
            for n in notices(owner, room_id)
            if owner.user_id in n.get("m.mentions", {}).get("user_ids", [])
        ]

    await owner.wait_until(mentioned, what="the reminder's mention in the room")
    assert "the buyer has waited 12 h" in mentioned()[0]["body"]

    # `!noreply`: out of Unanswered without an answer; said again, nothing waits.
    await owner.send_text(room_id, "!noreply")
    await owner.wait_until_async(answered, what="the room out of Unanswered after !noreply")
    await owner.wait_until(
        lambda: any(n["body"].startswith("No answer needed") for n in notices(owner, room_id)),
        what="the !noreply notice",
    )
    await owner.send_text(room_id, "!noreply")
    await owner.wait_until(
        lambda: any(
            n["body"] == "Nothing waits for an answer here." for n in notices(owner, room_id)
        ),
        what="the second !noreply's notice",
    )
    async with bridge.repository._reads() as session:
        outcomes = (await session.scalars(select(WaitRow.outcome).order_by(WaitRow.wait_id))).all()
    assert list(outcomes) == ["replied", "noreply"]
    # Closed, its last reminder never comes.
    assert await bridge.reminders.run_once(now + timedelta(hours=23)) == 0
