"""Canned replies end to end: the marketplace keeps a seller's templates through the API, a
manager sends one with `!t` from a real Matrix client, and the buyer's widget API shows it,
filled, under the manager's name, with its file; the management room's commands keep
them; bad input is refused and stores nothing."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image

from bridge.config import TranslationConfig
from bridge.core.ids import SellerID, SiteID
from tests.conftest import SITE, BridgeRunner, Sites, product
from tests.support import files
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.libretranslate import FakeLibreTranslate
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]

HELLO = "Hi {buyer}, the {title} is in stock. {member} from {seller}"


@dataclass
class Shop:
    """Seller acme with an owner and a manager (Maria), buyer Anna in the widget, one
    conversation whose room the manager has joined."""

    owner: SellerClient
    manager: SellerClient
    buyer: BuyerClient
    conversation_id: str
    room_id: str

    def room(self, sender: str | None = None, msgtype: str | None = None) -> list[dict[str, Any]]:
        """The room's messages as the manager's client shows them."""
        return [
            m
            for m in self.manager.messages(self.room_id)
            if (sender is None or m["sender"] == sender)
            and (msgtype is None or m["content"].get("msgtype") == msgtype)
        ]

    async def buyer_sees(self, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            listed = await self.buyer.ok("GET", f"/conversations/{self.conversation_id}/messages")
            return next((m for m in listed["messages"] if condition(m)), None)

        return await eventually(found, within=30, what="the template in the buyer's widget")


async def open_shop(
    runner: BridgeRunner,
    sites: Sites,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    *,
    buyer_lang: str | None = "en",
) -> Shop:
    owner = await new_seller("owner")
    manager = await new_seller("Maria")
    await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {
            "name": "ACME",
            "language": "en",
            "members": [
                {"user_id": owner.user_id, "role": "owner"},
                {"user_id": manager.user_id, "role": "manager"},
            ],
        },
    )
    buyer = BuyerClient(
        runner.config.web.public_url,
        buyer_token(sites.widget_secret, SITE, "Anna_K", name="Anna K.", lang=buyer_lang),
    )
    started = await buyer.ok("POST", "/conversations", {"seller_id": "acme", "context": product()})
    conversation = await marketplace.ok("GET", f"/conversations/{started['conversation_id']}")
    room_id = conversation["room_id"]
    await manager.wait_until(lambda: room_id in manager.invites, what="the invite")
    await manager.accept_invite(room_id)
    return Shop(owner, manager, buyer, started["conversation_id"], room_id)


@pytest_asyncio.fixture(loop_scope="session")
async def shop(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> AsyncIterator[Shop]:
    await runner.start()
    opened = await open_shop(runner, sites, marketplace, new_seller)
    yield opened
    await opened.buyer.close()


async def test_a_managers_template_reaches_the_buyer_filled_with_its_file(
    shop: Shop, marketplace: MarketplaceClient
) -> None:
    status, hello = await marketplace.call(
        "PUT", "/sellers/acme/templates/hello", {"text": HELLO, "position": 1}
    )
    assert status == 201, hello
    status, delivery = await marketplace.call(
        "PUT", "/sellers/acme/templates/delivery", {"text": "Our delivery zones:", "position": 2}
    )
    assert status == 201, delivery
    chart = files.png(64, 48)
    status, with_file = await marketplace.put_file(
        "/sellers/acme/templates/delivery/file", chart, "zones.png"
    )
    assert status == 200, with_file
    assert with_file["attachment"]["content_type"] == "image/png"
    listed = await marketplace.ok("GET", "/sellers/acme/templates")
    assert [(t["name"], t["position"], t["visible"]) for t in listed["templates"]] == [
        ("hello", 1.0, True),
        ("delivery", 2.0, True),
    ]

    # The list, numbered, for the manager.
    await shop.manager.send_text(shop.room_id, "!t")
    await shop.manager.wait_until(
        lambda: any(
            "1. hello" in n["content"]["body"] and "2. delivery" in n["content"]["body"]
            for n in shop.room(msgtype="m.notice")
        ),
        what="the numbered list",
    )

    await shop.manager.send_text(shop.room_id, "!t 1")
    filled = "Hi Anna K., the Electric kettle 1.7 l is in stock. Maria from ACME"
    message = await shop.buyer_sees(lambda m: m["text"] == filled)
    assert (message["sender"], message["sender_name"]) == ("seller", "Maria")
    await shop.manager.wait_until(
        lambda: any(
            n["content"]["body"].endswith(filled) and "Sent “hello”" in n["content"]["body"]
            for n in shop.room(msgtype="m.notice")
        ),
        what="the bot's notice of what was sent",
    )

    await shop.manager.send_text(shop.room_id, "!t delivery")
    message = await shop.buyer_sees(lambda m: m["text"] == "Our delivery zones:")
    assert message["sender_name"] == "Maria"
    (attachment,) = message["attachments"]
    assert (attachment["name"], attachment["kind"]) == ("zones.png", "image")
    downloaded = await shop.buyer.fetch(shop.conversation_id, attachment["attachment_id"])
    status, headers, data = downloaded
    assert (status, headers["Content-Type"]) == (200, "image/png")
    assert Image.open(io.BytesIO(data)).size == (64, 48)
    # The room shows the same file, posted by the bot.
    shown = await shop.manager.wait_until(
        lambda: next(
            (m for m in shop.room(msgtype="m.image") if m["sender"] != shop.manager.user_id), None
        ),
        what="the template's file in the room",
    )
    assert shown["content"]["body"] == "zones.png"
    assert await shop.manager.download(shown["content"]["url"]) == (200, data)

    # An unknown name or number names it and lists what there is; nothing reaches the buyer.
    await shop.manager.send_text(shop.room_id, "!t 9")
    await shop.manager.wait_until(
        lambda: any(
            n["content"]["body"].startswith("There is no template “9”.")
            and "2. delivery" in n["content"]["body"]
            for n in shop.room(msgtype="m.notice")
        ),
        what="the unknown template's notice",
    )
    listed = await shop.buyer.ok("GET", f"/conversations/{shop.conversation_id}/messages")
    assert [m["text"] for m in listed["messages"] if m["sender"] == "seller"] == [
        filled,
        "Our delivery zones:",
    ]


async def test_the_management_room_keeps_the_templates(
    shop: Shop, runner: BridgeRunner, marketplace: MarketplaceClient
) -> None:
    bridge = runner.running[0]
    space = await bridge.repository.seller_space(SiteID(SITE), SellerID("acme"))
    assert space is not None
    room_id = space.management_id
    manager = shop.manager
    await manager.wait_until(lambda: room_id in manager.invites, what="the management room")
    await manager.accept_invite(room_id)

    async def answer(text: str) -> str:
        seen = len(manager.messages(room_id))
        await manager.send_text(room_id, text)
        notice: dict[str, Any] = await manager.wait_until(
            lambda: next(
                (
                    m
                    for m in manager.messages(room_id)[seen:]
                    if m["content"].get("msgtype") == "m.notice"
                ),
                None,
            ),
            what=f"the answer to {text}",
        )
        return str(notice["content"]["body"])

    async def stored() -> list[tuple[str, str, float, bool]]:
        listed = await marketplace.ok("GET", "/sellers/acme/templates")
        return [(t["name"], t["text"], t["position"], t["visible"]) for t in listed["templates"]]

    assert await answer("!template add thanks Thank you, {buyer}!") == (
        "Added template “thanks” at position 1."
    )
    await answer("!template add delivery We deliver in 2 days")
    await answer("!template edit delivery We deliver tomorrow")
    await answer("!template position delivery 0.5")
    await answer("!template hide thanks")
    assert (await answer("!templates")).splitlines() == [
        "Templates (2), in order:",
        "0.5. delivery — We deliver tomorrow",
        "1. thanks [hidden] — Thank you, {buyer}!",
    ]
    assert await stored() == [
        ("delivery", "We deliver tomorrow", 0.5, True),
        ("thanks", "Thank you, {buyer}!", 1.0, False),
    ]

    bad = await answer("!template position delivery soon")
    assert bad.startswith("The position must be a number"), bad
    bad = await answer("!template add " + "n" * 65 + " text")
    assert bad.startswith("A template's name is 1 to 64 letters"), bad
    assert await answer("!template delete thanks") == "Deleted template “thanks”."
    assert await stored() == [("delivery", "We deliver tomorrow", 0.5, True)]


async def test_bad_template_input_is_refused_and_stores_nothing(
    shop: Shop, marketplace: MarketplaceClient
) -> None:
    refused = [
        (
            "PUT",
            "/sellers/acme/templates/two%20words",
            {"text": "x"},
            400,
            "BAZAAR_BAD_TEMPLATE_NAME",
        ),
        (
            "PUT",
            "/sellers/acme/templates/" + "n" * 65,
            {"text": "x"},
            400,
            "BAZAAR_BAD_TEMPLATE_NAME",
        ),
        ("PUT", "/sellers/acme/templates/ok", {"text": "x" * 10_001}, 413, "M_TOO_LARGE"),
        ("PUT", "/sellers/acme/templates/ok", {"text": ""}, 400, "M_INVALID_PARAM"),
        (
            "PUT",
            "/sellers/acme/templates/ok",
            {"text": "x", "position": "1"},
            400,
            "M_INVALID_PARAM",
        ),
        (
            "PUT",
            "/sellers/acme/templates/ok",
            {"text": "x", "visible": "yes"},
            400,
            "M_INVALID_PARAM",
        ),
        ("PUT", "/sellers/nobody/templates/ok", {"text": "x"}, 404, "BAZAAR_UNKNOWN_SELLER"),
        ("GET", "/sellers/nobody/templates", None, 404, "BAZAAR_UNKNOWN_SELLER"),
        ("DELETE", "/sellers/acme/templates/missing", None, 404, "BAZAAR_UNKNOWN_TEMPLATE"),
    ]
    for method, path, body, status, errcode in refused:
        answer_status, answer = await marketplace.call(method, path, body)
        assert (answer_status, answer["errcode"]) == (status, errcode), (path, body, answer)
    assert (await marketplace.ok("GET", "/sellers/acme/templates"))["templates"] == []

    await marketplace.ok("PUT", "/sellers/acme/templates/prices", {"text": "Our prices"})
    status, answer = await marketplace.put_file(
        "/sellers/acme/templates/prices/file", files.html_named_png(), "prices.png"
    )
    assert (status, answer["errcode"]) == (400, "BAZAAR_FILE_TYPE")
    status, answer = await marketplace.put_file(
        "/sellers/acme/templates/missing/file", files.png(), "x.png"
    )
    assert (status, answer["errcode"]) == (404, "BAZAAR_UNKNOWN_TEMPLATE")
    (prices,) = (await marketplace.ok("GET", "/sellers/acme/templates"))["templates"]
    assert prices["attachment"] is None

    assert await marketplace.call("DELETE", "/sellers/acme/templates/prices") == (204, None)
    assert (await marketplace.ok("GET", "/sellers/acme/templates"))["templates"] == []


async def test_a_template_reaches_a_buyer_of_another_language_translated(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    libre = FakeLibreTranslate()
    await libre.start()
    try:
        runner.config = replace(
            runner.config,
            translation=TranslationConfig(provider="libre", url=libre.url, timeout_seconds=5),
        )
        await runner.start()
        shop = await open_shop(runner, sites, marketplace, new_seller, buyer_lang="pl")
        await marketplace.ok("PUT", "/sellers/acme/templates/hello", {"text": "Hello!"})
        await shop.manager.send_text(shop.room_id, "!t hello")
        message = await shop.buyer_sees(lambda m: m["sender"] == "seller")
        assert message["text"] == libre.expected("Hello!", "en", "pl") == "Dzień dobry!"
        assert message["original"] == {"text": "Hello!", "lang": "en"}
        assert message["sender_name"] == "Maria"
        await shop.manager.wait_until(
            lambda: any(
                "The buyer reads (pl):\nDzień dobry!" in n["content"]["body"]
                for n in shop.room(msgtype="m.notice")
            ),
            what="the notice with the translation",
        )
        await shop.buyer.close()
    finally:
        await runner.stop_all()
        await libre.close()
