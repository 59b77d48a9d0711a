"""The buyer's profile in the seller's rooms, through a real Synapse: the room's
`io.bazaar.buyer` state (contacts only where the site shares them), the card on first
contact, `!profile`, and an update of the buyer following into the room."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import nio
import pytest

from tests.conftest import SITE, BridgeRunner, Sites, product
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.journeys import GHOST
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.shop import ShopServer, tiny_png
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]

PROFILE = {
    "name": "Anna <b>K.</b>",
    "email": "anna@example.com",
    "phone": "+370 600 12345",
    "profile_url": "https://shop.example/buyers/anna",
    "summary": {
        "orders_count": 3,
        "last_order": {"id": "1001", "date": "2026-11-30", "total": "42.00", "status": "paid"},
        "address": "Vilnius",
    },
}


async def profiled_room(marketplace: MarketplaceClient, owner: SellerClient) -> dict[str, Any]:
    await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {"name": "ACME", "members": [{"user_id": owner.user_id, "role": "owner"}]},
    )
    await marketplace.ok("PUT", "/buyers/anna", PROFILE)
    conversation = await marketplace.ok(
        "POST", "/conversations", {"seller_id": "acme", "buyer_id": "anna", "context": product()}
    )
    room_id = conversation["room_id"]
    await owner.wait_until(lambda: room_id in owner.invites, what="the invite")
    await owner.accept_invite(room_id)
    return dict(conversation)


def notices(owner: SellerClient, room_id: str) -> list[str]:
    return [
        m["content"]["body"]
        for m in owner.messages(room_id)
        if m["content"].get("msgtype") == "m.notice"
    ]


def cards(owner: SellerClient, room_id: str) -> list[str]:
    return [n for n in notices(owner, room_id) if n.startswith("Buyer: ")]


async def test_the_room_holds_the_profile_without_contacts_and_the_card_comes_once(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    conversation = await profiled_room(marketplace, owner)
    room_id = conversation["room_id"]

    state = await owner.state(room_id, "io.bazaar.buyer")
    assert state == {
        "buyer_id": "anna",
        "name": "Anna <b>K.</b>",
        "profile_url": "https://shop.example/buyers/anna",
        "summary": PROFILE["summary"],
    }

    await owner.wait_until(lambda: cards(owner, room_id), what="the profile card")
    card = cards(owner, room_id)[0]
    assert card.splitlines()[:4] == [
        "Buyer: Anna <b>K.</b>",
        "Profile: https://shop.example/buyers/anna",
        "Orders: 3",
        "Last order: #1001 · 2026-11-30 · 42.00 · paid",
    ]
    assert "anna@example.com" not in card and "12345" not in card
    # Plain text: nothing of the buyer's name goes into HTML.
    first_card = next(
        m for m in owner.messages(room_id) if m["content"].get("body", "").startswith("Buyer: ")
    )
    assert "formatted_body" not in first_card["content"]
    assert first_card["content"]["io.bazaar.card"] == "buyer"

    await owner.send_text(room_id, "!profile")
    await owner.wait_until(lambda: len(cards(owner, room_id)) == 2, what="the card again")
    assert cards(owner, room_id)[1] == card

    await marketplace.ok(
        "PUT",
        "/buyers/anna",
        {**PROFILE, "name": "Anna Karenina", "summary": {"orders_count": 4}},
    )

    async def updated() -> bool:
        now = await owner.state(room_id, "io.bazaar.buyer")
        return bool(
            now.get("name") == "Anna Karenina" and now.get("summary") == {"orders_count": 4}
        )

    await owner.wait_until_async(updated, what="the updated profile in the room")
    assert "email" not in await owner.state(room_id, "io.bazaar.buyer")
    # `!profile` says the card as it is now.
    await owner.send_text(room_id, "!profile")
    await owner.wait_until(lambda: len(cards(owner, room_id)) == 3, what="the new card")
    assert cards(owner, room_id)[2].splitlines() == [
        "Buyer: Anna Karenina",
        *[
            "Profile: https://shop.example/buyers/anna",
            "Orders: 4",
        ],
    ]


async def test_a_site_that_shares_contacts_shows_e_mail_and_phone(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    runner.config = replace(
        runner.config,
        sites=tuple(
            replace(site, share_buyer_contact=True) if site.id == SITE else site
            for site in runner.config.sites
        ),
    )
    await runner.start()
    owner = await new_seller("owner")
    room_id = (await profiled_room(marketplace, owner))["room_id"]

    state = await owner.state(room_id, "io.bazaar.buyer")
    assert (state["email"], state["phone"]) == ("anna@example.com", "+370 600 12345")
    await owner.wait_until(lambda: cards(owner, room_id), what="the profile card")
    card = cards(owner, room_id)[0]
    assert "E-mail: anna@example.com" in card and "Phone: +370 600 12345" in card


async def test_the_ghost_shows_the_buyer_avatar_and_follows_its_change(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    shop = ShopServer()
    await shop.start()
    try:
        first, second = tiny_png(), tiny_png(rgb=(0, 0, 255))
        owner = await new_seller("owner")
        await marketplace.ok(
            "PUT",
            "/sellers/acme",
            {"name": "ACME", "members": [{"user_id": owner.user_id, "role": "owner"}]},
        )
        await marketplace.ok(
            "PUT",
            "/buyers/anna",
            {"name": "Anna", "avatar_url": shop.add("a.png", first, "image/png")},
        )
        conversation = await marketplace.ok(
            "POST",
            "/conversations",
            {"seller_id": "acme", "buyer_id": "anna", "context": product()},
        )
        await owner.wait_until(lambda: conversation["room_id"] in owner.invites, what="invite")
        await owner.accept_invite(conversation["room_id"])

        async def ghost_picture() -> bytes | None:
            answer = await owner.client.get_avatar(GHOST)
            if not isinstance(answer, nio.ProfileGetAvatarResponse) or not answer.avatar_url:
                return None
            downloaded = await owner.client.download(mxc=answer.avatar_url)
            assert isinstance(downloaded, nio.DownloadResponse), downloaded
            return bytes(downloaded.body)

        assert await ghost_picture() == first
        await marketplace.ok(
            "PUT",
            "/buyers/anna",
            {"name": "Anna", "avatar_url": shop.add("b.png", second, "image/png")},
        )

        async def shows_second() -> bool:
            return await ghost_picture() == second

        await eventually(shows_second, what="the ghost's new avatar")
    finally:
        await shop.stop()


async def test_signing_in_from_the_widget_keeps_the_profile(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller, sites: Sites
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    room_id = (await profiled_room(marketplace, owner))["room_id"]
    # The widget's token names the buyer differently: the sign-in stores the new name.
    token = buyer_token(sites.widget_secret, SITE, "anna", name="Anna Karenina")
    buyer = BuyerClient(runner.config.web.public_url, token)
    try:
        await buyer.ok("GET", "/conversations")
    finally:
        await buyer.close()

    async def renamed() -> dict[str, Any] | None:
        state = await owner.state(room_id, "io.bazaar.buyer")
        return state if state.get("name") == "Anna Karenina" else None

    state = await eventually(renamed, what="the new name in the room")
    assert (state["profile_url"], state["summary"]) == (PROFILE["profile_url"], PROFILE["summary"])
