"""Who answers for a seller is decided by roles; every room of the seller follows, for real."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import aiohttp
import nio
import pytest

from bridge.app import Bridge
from tests.conftest import BridgeRunner, Homeserver, product
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]


def homeserver_requests(bridge: Bridge) -> list[tuple[str, str]]:
    """Every request the bridge's gateway makes from now on, as (method, path)."""
    asked: list[tuple[str, str]] = []
    original = bridge.gateway.request_json

    async def noted(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        asked.append((method, unquote(path.split("?", maxsplit=1)[0])))
        return await original(method, path, *args, **kwargs)

    bridge.gateway.request_json = noted  # type: ignore[method-assign]
    return asked


async def test_members_follow_the_marketplace_in_every_room(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    manager = await new_seller("manager")
    newcomer = await new_seller("newcomer")
    staff = await new_seller("staff")

    async def set_members(*members: tuple[SellerClient, str]) -> None:
        await marketplace.ok(
            "PUT",
            "/sellers/acme",
            {"name": "ACME", "members": [{"user_id": c.user_id, "role": r} for c, r in members]},
        )

    await set_members((owner, "owner"), (manager, "manager"), (staff, "staff"))
    rooms = []
    for buyer in ("b1", "b2", "b3"):
        await marketplace.ok("PUT", f"/buyers/{buyer}", {"name": buyer.upper()})
        conversation = await marketplace.ok(
            "POST", "/conversations", {"seller_id": "acme", "buyer_id": buyer, "context": product()}
        )
        rooms.append(conversation["room_id"])
    for client in (owner, manager):
        await client.wait_until(lambda c=client: set(rooms) <= c.invites, what="invites")
        for room_id in rooms:
            await client.accept_invite(room_id)

    # The manager leaves the shop, a newcomer joins it as manager, staff stays staff.
    asked = homeserver_requests(bridge)
    await set_members((owner, "owner"), (newcomer, "manager"), (staff, "staff"))

    await newcomer.wait_until(lambda: set(rooms) <= newcomer.invites, what="the newcomer's invites")
    for room_id in rooms:

        async def settled(room_id: str = room_id) -> bool:
            member = await owner.client.room_get_state_event(
                room_id, "m.room.member", manager.user_id
            )
            return (
                isinstance(member, nio.RoomGetStateEventResponse)
                and member.content.get("membership") == "leave"
            )

        await owner.wait_until_async(settled, what=f"{room_id} following the new roles")
        assert await owner.level(room_id, newcomer.user_id) == 50
        assert await owner.level(room_id, owner.user_id) == 50
    # The bridge knew each room's state from what it wrote and saw: it read none back; and
    # the members hold the room's default level, so the levels were not written either.
    in_rooms = [(m, path) for m, path in asked if any(f"/rooms/{r}/" in path for r in rooms)]
    assert in_rooms, asked
    assert not [path for method, path in in_rooms if method == "GET"], in_rooms
    assert not [path for _, path in in_rooms if "m.room.power_levels" in path], in_rooms
    # One invite and one kick per room: nothing else.
    done = Counter(path.rsplit("/", 1)[-1] for _, path in in_rooms)
    assert done == {"invite": len(rooms), "kick": len(rooms)}, in_rooms

    # The removed manager can't come back on their own, and staff can't get in either.
    for client in (manager, staff):
        refused = await client.client.join(rooms[0])
        assert isinstance(refused, nio.JoinError), refused
    await newcomer.accept_invite(rooms[0])
    event_id = await newcomer.send_text(rooms[0], "Hello, I'm new here.")
    assert event_id


async def test_a_stranger_forced_into_a_room_is_removed(
    homeserver: Homeserver,
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
) -> None:
    """A server admin can force anyone into a room; the bot takes them out again."""
    await runner.start()
    owner = await new_seller("owner")
    stranger = await new_seller("stranger")
    await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {"name": "ACME", "members": [{"user_id": owner.user_id, "role": "owner"}]},
    )
    await marketplace.ok("PUT", "/buyers/b1", {"name": "B1"})
    conversation = await marketplace.ok(
        "POST", "/conversations", {"seller_id": "acme", "buyer_id": "b1", "context": product()}
    )
    room_id = conversation["room_id"]
    await owner.wait_until(lambda: room_id in owner.invites, what="invite")
    await owner.accept_invite(room_id)

    admin_password = secrets.token_urlsafe(12)
    admin_id = await homeserver.synapse.register_user(
        f"admin-{secrets.token_hex(4)}", admin_password, admin=True
    )
    admin = SellerClient(homeserver.synapse.address, admin_id, admin_password)
    await admin.login()
    try:
        headers = {"Authorization": f"Bearer {admin.client.access_token}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            # The server admin takes power in the room, joins, and pulls a stranger in.
            async with session.post(
                f"{homeserver.synapse.address}/_synapse/admin/v1/rooms/{room_id}/make_room_admin",
                json={"user_id": admin_id},
            ) as response:
                assert response.status == 200, await response.text()
            joined = await admin.client.join(room_id)
            assert isinstance(joined, nio.JoinResponse), joined
            async with session.post(
                f"{homeserver.synapse.address}/_synapse/admin/v1/join/{room_id}",
                json={"user_id": stranger.user_id},
            ) as response:
                assert response.status == 200, await response.text()
    finally:
        await admin.close()

    async def stranger_gone() -> bool:
        member = await owner.client.room_get_state_event(room_id, "m.room.member", stranger.user_id)
        return (
            isinstance(member, nio.RoomGetStateEventResponse)
            and member.content.get("membership") == "leave"
        )

    await owner.wait_until_async(stranger_gone, what="the stranger removed")
    levels = await owner.state(room_id, "m.room.power_levels")
    assert set(levels["users"]) <= {
        owner.user_id,
        "@bazaar_shop_b1:localhost",
        "@bazaarbot:localhost",
    }
    refused = await stranger.client.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": "hi"}
    )
    assert isinstance(refused, nio.RoomSendError), refused
