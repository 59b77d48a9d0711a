"""What a seller finds when the bot makes a room: its state in one createRoom, the bot
under its name, and every room and Space in the configured room version, reachable from
the Space's /hierarchy."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import nio
import pytest
from aiohttp import web

from bridge.app import BOT_DISPLAY_NAME
from bridge.config import Config
from bridge.core.ids import SellerID, SiteID
from bridge.core.models import ConversationState, SellerSpace
from tests.conftest import SITE, BridgeRunner, Homeserver, product
from tests.support.faults import FaultyPath
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.shop import ShopServer, tiny_png
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]
BOT = "@bazaarbot:localhost"
GHOST = "@bazaar_shop_anna:localhost"


async def history(seller: SellerClient, room_id: str) -> list[dict[str, Any]]:
    """Every event of the room, oldest first, as the seller's client pages back to its top."""
    newest_first: list[dict[str, Any]] = []
    start: str | None = None
    while True:
        response = await seller.client.room_messages(
            room_id, start=start, direction=nio.MessageDirection.back, limit=100
        )
        assert isinstance(response, nio.RoomMessagesResponse), response
        newest_first += [event.source for event in response.chunk]
        if not response.chunk or not response.end:
            return newest_first[::-1]
        start = response.end


async def hierarchy(seller: SellerClient, space_id: str) -> dict[str, set[str]]:
    """The Space's /hierarchy as the seller's client reads it: each room it lists, with
    the children it gives that room."""
    rooms: dict[str, set[str]] = {}
    page: str | None = None
    while True:
        response = await seller.client.space_get_hierarchy(space_id, from_page=page)
        assert isinstance(response, nio.SpaceGetHierarchyResponse), response
        for room in response.rooms:
            rooms[room["room_id"]] = {
                child["state_key"]
                for child in room.get("children_state", [])
                if child["content"].get("via")
            }
        if not response.next_batch:
            return rooms
        page = response.next_batch


async def default_room_version(seller: SellerClient) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{seller.client.homeserver}/_matrix/client/v3/capabilities",
            headers={"Authorization": f"Bearer {seller.client.access_token}"},
        ) as response,
    ):
        answer = await response.json()
    return str(answer["capabilities"]["m.room_versions"]["default"])


def with_room_version(config: Config, version: str | None) -> Config:
    return replace(config, bridge=replace(config.bridge, room_version=version))


async def seller_with(
    marketplace: MarketplaceClient, *members: tuple[SellerClient, str], seller_id: str = "acme"
) -> None:
    await marketplace.ok(
        "PUT",
        f"/sellers/{seller_id}",
        {
            "name": "ACME",
            "members": [{"user_id": client.user_id, "role": role} for client, role in members],
        },
    )


async def ask(
    marketplace: MarketplaceClient, context: dict[str, Any], buyer_id: str = "anna"
) -> dict[str, Any]:
    await marketplace.ok("PUT", f"/buyers/{buyer_id}", {"name": "Anna"})
    conversation: dict[str, Any] = await marketplace.ok(
        "POST", "/conversations", {"seller_id": "acme", "buyer_id": buyer_id, "context": context}
    )
    return conversation


async def joined(seller: SellerClient, room_id: str) -> None:
    await seller.wait_until(lambda: room_id in seller.invites, what=f"the invite to {room_id}")
    await seller.accept_invite(room_id)


async def space_of(runner: BridgeRunner, seller_id: str = "acme") -> SellerSpace:
    space = await runner.running[-1].repository.seller_space(SiteID(SITE), SellerID(seller_id))
    assert space is not None
    return space


async def test_the_room_opens_on_its_whole_state_then_only_the_people(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    shop = ShopServer()
    await shop.start()
    try:
        owner = await new_seller("owner")
        await seller_with(marketplace, (owner, "owner"))
        image_url = shop.add("kettle.png", tiny_png(), "image/png")
        conversation = await ask(marketplace, product(image_url=image_url))
    finally:
        await shop.stop()
    room_id = conversation["room_id"]
    await joined(owner, room_id)
    await marketplace.ok(
        "POST",
        f"/conversations/{conversation['conversation_id']}/messages",
        {"text": "Is it in stock?", "client_id": "q-1"},
    )
    await owner.wait_until(
        lambda: any(m["sender"] == GHOST for m in owner.messages(room_id)),
        what="the buyer's question",
    )

    # The bot's profile card of the buyer comes once the buyer's ghost is in (first contact).
    everything = await history(owner, room_id)
    card = [e for e in everything if e["content"].get("msgtype") == "m.notice"]
    assert [e["sender"] for e in card] == [BOT] and card[0]["content"]["body"] == "Buyer: Anna"
    events = [e for e in everything if e not in card]
    question = next(i for i, e in enumerate(events) if e["type"] == "m.room.message")
    assert events[question]["content"]["body"] == "Is it in stock?"
    opening = events[:question]
    assert opening[0]["type"] == "m.room.create"
    people_from = next(
        i for i, e in enumerate(opening) if e["type"] == "m.room.member" and e["state_key"] != BOT
    )
    creation, people = opening[:people_from], opening[people_from:]
    # One block of the bot's state events, which clients fold into "created the room"…
    assert all(e["sender"] == BOT and "state_key" in e for e in creation)
    assert sorted(e["type"] for e in creation) == sorted(
        [
            "m.room.create",
            "m.room.member",
            "m.room.power_levels",
            "m.room.canonical_alias",
            "m.room.join_rules",
            "m.room.history_visibility",
            "m.room.guest_access",
            "m.room.name",
            "m.room.topic",
            "m.room.avatar",
            "io.bazaar.conversation",
            "io.bazaar.context",
            "io.bazaar.buyer",
            "m.bridge",
            "uk.half-shot.bridge",
            # The context pane and its place in Element's right panel.
            "im.vector.modular.widgets",
            "io.element.widgets.layout",
            "m.space.parent",
        ]
    )
    bot_join = next(e for e in creation if e["type"] == "m.room.member")
    assert bot_join["content"]["displayname"] == BOT_DISPLAY_NAME
    space = await space_of(runner)
    parent = next(e for e in creation if e["type"] == "m.space.parent")
    assert parent["state_key"] == space.space_id
    assert parent["content"] == {"via": ["localhost"], "canonical": True}
    # …then only memberships: what can't come before the room exists.
    assert [(e["content"]["membership"], e["state_key"]) for e in people] == [
        ("invite", owner.user_id),
        ("invite", GHOST),
        ("join", GHOST),
        ("join", owner.user_id),
    ]


class PingRefused(FaultyPath):
    """The homeserver as the bridge sees it while the homeserver can't reach the bridge
    (a firewall, a wrong `url` in the registration): every call goes through, and the ping
    fails as Synapse's does."""

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/_matrix/client/v1/appservice/"):
            return web.json_response(
                {"errcode": "M_CONNECTION_FAILED", "error": "ConnectError: refused"}, status=502
            )
        return await super()._forward(request)


async def test_the_bot_has_its_name_before_it_invites_anyone(
    homeserver: Homeserver,
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
) -> None:
    # A bot that has never been named, as on a fresh homeserver.
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            f"{homeserver.synapse.address}/_matrix/client/v3/profile/{BOT}/displayname",
            json={"displayname": "bazaarbot"},
            headers={"Authorization": f"Bearer {homeserver.as_token}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
    proxy = PingRefused(homeserver.synapse.address)
    await proxy.start()
    try:
        runner.config = replace(
            runner.config, homeserver=replace(runner.config.homeserver, address=proxy.base)
        )
        await runner.start()
        owner = await new_seller("owner")
        await seller_with(marketplace, (owner, "owner"))
        conversation = await ask(marketplace, product())
        room_id = conversation["room_id"]
        await joined(owner, room_id)
        space = await space_of(runner)
        await joined(owner, space.space_id)

        for seen in (room_id, space.space_id):
            bot_events = [e for e in await history(owner, seen) if e.get("state_key") == BOT]
            # Named in its first event, and never renamed in the room afterwards.
            assert [e["content"].get("displayname") for e in bot_events] == [BOT_DISPLAY_NAME]
        assert await owner.display_name(BOT) == BOT_DISPLAY_NAME
    finally:
        await runner.stop_all()
        await proxy.stop()


@pytest.mark.parametrize("configured", [None, "11"])
async def test_every_room_and_space_has_the_configured_version_and_is_in_the_hierarchy(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    configured: str | None,
) -> None:
    admin = await new_seller("admin")
    runner.config = with_room_version(runner.config, configured)
    runner.config = replace(
        runner.config,
        sites=tuple(
            replace(site, admins=(admin.user_id,)) if site.id == SITE else site
            for site in runner.config.sites
        ),
    )
    bridge = await runner.start()
    owner = await new_seller("owner")
    await seller_with(marketplace, (owner, "owner"))
    conversation = await ask(marketplace, product())
    room_id = conversation["room_id"]
    space = await space_of(runner)
    assert space.marketplace_id is not None
    for made in (room_id, *space.rooms):
        await joined(owner, made)
    await admin.wait_until(lambda: bool(admin.invites), what="the admins' control room")
    control = await bridge.repository.site_room(SiteID(SITE), "admins")
    assert control is not None
    await joined(admin, control)

    expected = configured or await default_room_version(owner)
    for reader, made in [*((owner, r) for r in (room_id, *space.rooms)), (admin, control)]:
        assert (await reader.state(made, "m.room.create"))["room_version"] == expected, made
        # Rooms up to version 11 give the bot its power in `users`; later ones by creation.
        users = (await reader.state(made, "m.room.power_levels"))["users"]
        assert users.get(BOT) == (100 if expected == "11" else None), made

    active = space.sections[ConversationState.ACTIVE]
    assert await hierarchy(owner, space.space_id) == {
        space.space_id: {*space.sections.values(), space.management_id, space.marketplace_id},
        active: {room_id},
        space.sections[ConversationState.ARCHIVED]: set(),
        space.sections[ConversationState.BLOCKED]: set(),
        space.management_id: set(),
        space.marketplace_id: set(),
        room_id: set(),
    }


@pytest.mark.parametrize(("before", "after"), [("11", None), (None, "11")])
async def test_a_new_room_version_leaves_the_existing_space_in_the_bots_hands(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    before: str | None,
    after: str | None,
) -> None:
    runner.config = with_room_version(runner.config, before)
    bridge = await runner.start()
    owner = await new_seller("owner")
    await seller_with(marketplace, (owner, "owner"))
    await ask(marketplace, product())
    space = await space_of(runner)
    await joined(owner, space.space_id)
    await runner.stop(bridge)

    runner.config = with_room_version(runner.config, after)
    await runner.start()
    manager = await new_seller("manager")
    await seller_with(marketplace, (owner, "owner"), (manager, "manager"))

    async def manager_placed() -> bool:
        levels = await owner.state(space.space_id, "m.room.power_levels")
        return bool(levels["users"].get(manager.user_id) == 50)

    await owner.wait_until_async(manager_placed, what="the manager's level in the Space")
    levels = await owner.state(space.space_id, "m.room.power_levels")
    # The Space keeps its own version's rule for the bot: listed at 100 in a version 11
    # room, absent (a creator outranks everyone) from a later one.
    version = (await owner.state(space.space_id, "m.room.create"))["room_version"]
    assert levels["users"].get(BOT) == (100 if version == "11" else None)
    assert levels["users"][owner.user_id] == 50
    await manager.wait_until(lambda: space.space_id in manager.invites, what="the Space invite")


async def test_a_room_version_the_homeserver_does_not_offer_is_named_at_start(
    runner: BridgeRunner, caplog: pytest.LogCaptureFixture
) -> None:
    runner.config = replace(runner.config, bridge=replace(runner.config.bridge, room_version="99"))
    caplog.set_level(logging.ERROR, logger="bridge.matrix.bot")
    await runner.start()

    async def named() -> bool:
        return any("does not offer" in record.getMessage() for record in caplog.records)

    await eventually(named, what="the error naming bridge.room_version")
    (record,) = [r for r in caplog.records if "does not offer" in r.getMessage()]
    assert "'99'" in record.getMessage() and "12" in record.getMessage()
