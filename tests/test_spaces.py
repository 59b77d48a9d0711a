"""The seller's Space in Matrix: sections by state, rooms moving between them, a management room."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import nio
import pytest

from bridge.core.ids import SellerID, SiteID
from bridge.core.models import ConversationState
from tests.conftest import SITE, BridgeRunner
from tests.support.journeys import GHOST, two_conversations
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]


async def _idle(busy: bool) -> bool:
    return not busy


async def children(owner: SellerClient, space_id: str) -> set[str]:
    response = await owner.client.room_get_state(space_id)
    assert isinstance(response, nio.RoomGetStateResponse), response
    return {
        event["state_key"]
        for event in response.events
        if event["type"] == "m.space.child" and event["content"].get("via")
    }


async def test_rooms_sit_in_the_section_of_their_state(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    first, second = await two_conversations(marketplace, owner)
    space = await bridge.repository.seller_space(SiteID(SITE), SellerID("acme"))
    assert space is not None
    for room_id in space.rooms:
        await owner.wait_until(lambda r=room_id: r in owner.invites, what="the Space's invites")
        await owner.accept_invite(room_id)

    create = await owner.state(space.space_id, "m.room.create")
    assert create.get("type") == "m.space"
    assert (await owner.state(space.space_id, "m.room.name"))["name"] == "ACME · Test Shop"
    assert space.marketplace_id is not None
    assert await children(owner, space.space_id) == {
        *space.sections.values(),
        space.management_id,
        space.marketplace_id,
    }
    active = space.sections[ConversationState.ACTIVE]
    archived = space.sections[ConversationState.ARCHIVED]
    blocked = space.sections[ConversationState.BLOCKED]
    assert (await owner.state(active, "m.room.name"))["name"].startswith("Active")
    assert await children(owner, active) == {first["room_id"], second["room_id"]}

    # Eight quiet days: both move to Archived.
    await bridge.archive.sweep(datetime.now(UTC) + timedelta(days=8))

    async def moved_to_archived() -> bool:
        return await children(owner, archived) == {first["room_id"], second["room_id"]}

    await owner.wait_until_async(moved_to_archived, what="the rooms in Archived")
    assert await children(owner, active) == set()

    # Blocking moves the pair's rooms to Blocked.
    await marketplace.ok(
        "POST", f"/conversations/{first['conversation_id']}/block", {"by": "seller"}
    )

    async def moved_to_blocked() -> bool:
        return await children(owner, blocked) == {first["room_id"], second["room_id"]}

    await owner.wait_until_async(moved_to_blocked, what="the rooms in Blocked")
    assert await children(owner, archived) == set()

    # After a restart the bridge still knows where each room sits: bringing a room in line
    # writes nothing to the Space, and unblocking moves the rooms out of Blocked.
    await runner.stop(bridge)
    bridge = await runner.start()
    await eventually(lambda: _idle(bridge.courier.busy), what="the restart settled")
    # The block reached the rooms' power levels, even if the restart cut its work short.
    for room_id in (first["room_id"], second["room_id"]):
        levels = await owner.state(room_id, "m.room.power_levels")
        assert levels["users"][GHOST] == -1
    state_writes: list[str] = []
    put_state = bridge.gateway.put_state

    async def recorded(room_id: str, event_type: str, *args: Any, **kwargs: Any) -> Any:
        state_writes.append(event_type)
        return await put_state(room_id, event_type, *args, **kwargs)  # type: ignore[arg-type]

    bridge.gateway.put_state = recorded  # type: ignore[method-assign]
    await bridge.courier.refresh_members([first["conversation_id"]])
    await eventually(lambda: _idle(bridge.courier.busy), what="the room brought in line")
    assert state_writes == []

    await marketplace.ok(
        "POST", f"/conversations/{first['conversation_id']}/unblock", {"by": "seller"}
    )

    async def moved_to_active() -> bool:
        return await children(owner, active) == {
            first["room_id"],
            second["room_id"],
        } and not await children(owner, blocked)

    await owner.wait_until_async(moved_to_active, what="the rooms back in Active, out of Blocked")


async def test_the_management_room_answers_commands(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    await two_conversations(marketplace, owner)
    space = await bridge.repository.seller_space(SiteID(SITE), SellerID("acme"))
    assert space is not None
    room_id = space.management_id
    await owner.wait_until(lambda: room_id in owner.invites, what="the management room")
    await owner.accept_invite(room_id)

    def notices() -> list[str]:
        return [
            m["content"]["body"]
            for m in owner.messages(room_id)
            if m["content"].get("msgtype") == "m.notice"
        ]

    await owner.send_text(room_id, "!help")
    await owner.wait_until(lambda: any("!status" in n for n in notices()), what="the help text")
    await owner.send_text(room_id, "!status")
    await owner.wait_until(
        lambda: any(n == "Conversations: 2 active, 0 archived, 0 blocked" for n in notices()),
        what="the status",
    )
