"""Chat off, on the real Synapse: the owner's `!chat off` in the management room (a
manager's refused), the buyer's feedback form reaching that room and the webhook, and
`!chat on` opening the chat again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from bridge.core.ids import SellerID, SiteID
from tests.conftest import SITE, BridgeRunner, Sites, product
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]

ONLY_OWNER = "Only the shop's owner can turn the chat off or on."
CHAT_OFF = (
    "The chat is off: buyers see a feedback form instead, and each form they send is shown "
    "here. Say !chat on to reopen it."
)
CHAT_ON = "The chat is on: buyers can write to you again."


def notices(member: SellerClient, room_id: str) -> list[str]:
    return [
        m["content"]["body"]
        for m in member.messages(room_id)
        if m["content"].get("msgtype") == "m.notice"
    ]


async def says(member: SellerClient, room_id: str, text: str) -> None:
    await member.wait_until(lambda: text in notices(member, room_id), what=f"the notice {text!r}")


async def test_the_owner_turns_chat_off_and_the_form_reaches_the_management_room(
    runner: BridgeRunner,
    sites: Sites,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    webhooks: WebhookReceiver,
) -> None:
    bridge = await runner.start()
    owner, manager = await new_seller("owner"), await new_seller("manager")
    await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {
            "name": "ACME",
            "members": [
                {"user_id": owner.user_id, "role": "owner"},
                {"user_id": manager.user_id, "role": "manager"},
            ],
        },
    )
    await marketplace.ok("PUT", "/buyers/anna", {"name": "Anna K.", "email": "anna@example.org"})
    # A first conversation makes the seller's Space and its management room.
    await marketplace.ok(
        "POST", "/conversations", {"seller_id": "acme", "buyer_id": "anna", "context": product()}
    )
    space = await bridge.repository.seller_space(SiteID(SITE), SellerID("acme"))
    assert space is not None
    room_id = space.management_id
    for member in (owner, manager):
        await member.wait_until(lambda m=member: room_id in m.invites, what="the invite")
        await member.accept_invite(room_id)
    anna = BuyerClient(
        runner.config.web.public_url,
        buyer_token(sites.widget_secret, SITE, "anna", name="Anna K."),
    )
    try:
        await manager.send_text(room_id, "!chat off")
        await says(manager, room_id, ONLY_OWNER)
        assert (await anna.ok("GET", "/sellers/acme"))["chat_enabled"] is True

        await owner.send_text(room_id, "!chat off")
        await says(owner, room_id, CHAT_OFF)
        assert (await anna.ok("GET", "/sellers/acme"))["chat_enabled"] is False
        status, error = await anna.call(
            "POST", "/conversations", {"seller_id": "acme", "context": product("mug-2")}
        )
        assert (status, error["errcode"]) == (403, "BAZAAR_CHAT_DISABLED")
        # The marketplace updating the seller for another reason leaves the switch alone.
        await marketplace.ok(
            "PUT",
            "/sellers/acme",
            {
                "name": "ACME",
                "members": [
                    {"user_id": owner.user_id, "role": "owner"},
                    {"user_id": manager.user_id, "role": "manager"},
                ],
                "greeting": "Welcome!",
            },
        )
        assert (await anna.ok("GET", "/sellers/acme"))["chat_enabled"] is False

        sent = await anna.ok(
            "POST",
            "/sellers/acme/feedback",
            {"text": "Do you deliver to Kaunas?", "contact": "+370 600 00000"},
        )
        notice = (
            "Feedback from Anna K. (chat is off):\nDo you deliver to Kaunas?\n"
            "Contact: +370 600 00000\nSay !chat on to take questions in chat again."
        )
        await says(owner, room_id, notice)
        await says(manager, room_id, notice)
        [event] = await webhooks.wait_for("feedback.created")
        assert event["feedback"]["feedback_id"] == sent["feedback_id"]
        assert (event["feedback"]["text"], event["feedback"]["contact"]) == (
            "Do you deliver to Kaunas?",
            "+370 600 00000",
        )
        assert (event["feedback"]["seller_id"], event["feedback"]["buyer_id"]) == ("acme", "anna")

        await owner.send_text(room_id, "!chat on")
        await says(owner, room_id, CHAT_ON)
        assert (await anna.ok("GET", "/sellers/acme"))["chat_enabled"] is True
        status, error = await anna.call("POST", "/sellers/acme/feedback", {"text": "Again?"})
        assert (status, error["errcode"]) == (409, "BAZAAR_CHAT_ENABLED")
        # The form told the room once; nothing more came of the refused one.
        assert notices(owner, room_id).count(notice) == 1
        assert len(webhooks.of_type("feedback.created")) == 1
    finally:
        await anna.close()


async def test_chat_without_off_or_on_gets_its_usage(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {"name": "ACME", "members": [{"user_id": owner.user_id, "role": "owner"}]},
    )
    await marketplace.ok("PUT", "/buyers/anna", {"name": "Anna"})
    await marketplace.ok(
        "POST", "/conversations", {"seller_id": "acme", "buyer_id": "anna", "context": product()}
    )
    space = await bridge.repository.seller_space(SiteID(SITE), SellerID("acme"))
    assert space is not None
    room_id = space.management_id
    await owner.wait_until(lambda: room_id in owner.invites, what="the invite")
    await owner.accept_invite(room_id)
    await owner.send_text(room_id, "!chat maybe")
    await says(
        owner,
        room_id,
        "Say !chat off or !chat on.\n"
        "!chat off / !chat on — close or reopen the chat; while off, buyers get a form",
    )
    await owner.send_text(room_id, "!help")
    await owner.wait_until(
        lambda: any("!chat off / !chat on" in n for n in notices(owner, room_id)),
        what="!chat in the help",
    )
