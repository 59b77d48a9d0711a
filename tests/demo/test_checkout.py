"""The demo shop's round trip with a real bridge and Synapse: a seller's `!offer` is opened
by the shop's webhook receiver with its own checkout, the checkout page places an order and
the order page moves it on; a forged form changes nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from bridge.demo.marketplace import MarketplaceAPI
from bridge.demo.shop import DemoShop
from bridge.demo.synapse import free_port
from bridge.demo.webhooks import WebhookPrinter
from tests.conftest import SITE, BridgeRunner, Homeserver, Sites, bridge_config
from tests.support.journeys import joined_conversation
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]


@pytest_asyncio.fixture(loop_scope="session")
async def printer(sites: Sites) -> AsyncIterator[WebhookPrinter]:
    receiver = WebhookPrinter(sites.webhook_secret, say=lambda line: None)
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def demo_runner(
    homeserver: Homeserver, sqlite_url: str, sites: Sites, printer: WebhookPrinter, tmp_path: Path
) -> AsyncIterator[BridgeRunner]:
    config = bridge_config(
        homeserver, sqlite_url, sites, printer.url, free_port(), tmp_path / "media"
    )
    bridges = BridgeRunner(config)
    yield bridges
    await bridges.stop_all()


def form_of(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))


async def test_an_offer_is_opened_bought_and_paid_through_the_demo_shop(
    demo_runner: BridgeRunner, printer: WebhookPrinter, sites: Sites, new_seller: NewSeller
) -> None:
    await demo_runner.start()
    public = demo_runner.config.web.public_url
    shop = DemoShop(
        site=SITE,
        seller="acme",
        widget_secret=sites.widget_secret,
        bridge_url=public,
        port=free_port(),
        api=MarketplaceAPI(f"{public}/api/v1/sites/{SITE}", sites.api_token),
    )
    assert shop.checkout is not None
    printer.listen("offer.created", shop.checkout.offer_created)
    await shop.start()
    marketplace = MarketplaceClient(public, SITE, sites.api_token)
    try:
        owner = await new_seller("owner")
        conversation = await joined_conversation(marketplace, owner)
        cid, room_id = conversation["conversation_id"], conversation["room_id"]
        await owner.send_text(room_id, "!offer 2")

        async def opened() -> dict[str, object] | None:
            offers = (await marketplace.ok("GET", f"/conversations/{cid}/offers"))["offers"]
            return next((o for o in offers if o["status"] == "open"), None)

        offer = await eventually(opened, what="the shop opening the offer")
        checkout = f"{shop.url}/checkout/{cid}/{offer['offer_id']}"
        assert offer["checkout_url"] == checkout
        assert offer["image_url"] == f"{shop.url}/img/kettle-1.png"

        async with aiohttp.ClientSession() as browser:
            async with browser.get(checkout) as page:
                assert page.status == 200
                text = await page.text()
            assert "Electric kettle 1.7 l" in text and "49.80 EUR" in text
            async with browser.post(checkout, data={"token": "forged"}) as forged:
                assert forged.status == 403
            async with browser.post(checkout, data={}) as forged:
                assert forged.status == 403
            assert (await opened()) is not None  # the forged posts changed nothing
            assert (await marketplace.ok("GET", f"/conversations/{cid}/orders"))["orders"] == []

            async with browser.post(checkout, data=form_of(text)) as placed:
                assert placed.status == 200
                confirmation = await placed.text()
            order_url = f"{shop.url}/orders/D-1001"
            assert f'href="{order_url}"' in confirmation
            offers = (await marketplace.ok("GET", f"/conversations/{cid}/offers"))["offers"]
            assert [o["status"] for o in offers] == ["accepted"]
            (order,) = (await marketplace.ok("GET", f"/conversations/{cid}/orders"))["orders"]
            assert (order["order_id"], order["status"], order["total"], order["url"]) == (
                "D-1001",
                "placed",
                "49.80",
                order_url,
            )
            async with browser.get(checkout) as again:
                assert again.status == 409
                assert "D-1001" in await again.text()

            async with browser.get(order_url) as page:
                order_page = await page.text()
            assert '<strong class="status">placed</strong>' in order_page
            forms = re.findall(r"<form.*?</form>", order_page)
            paid_form = next(f for f in forms if "Mark paid" in f)
            assert "disabled" not in paid_form
            async with browser.post(order_url, data={"status": "paid", "token": "x"}) as forged:
                assert forged.status == 403
            async with browser.post(order_url, data=form_of(paid_form)) as moved:
                assert moved.status == 200
                assert '<strong class="status">paid</strong>' in await moved.text()
            async with browser.get(f"{shop.url}/checkout/{cid}/o-unknown") as unknown:
                assert unknown.status == 404
                assert "No such offer" in await unknown.text()

        def order_notices() -> list[str]:
            return [
                m["content"]["body"]
                for m in owner.messages(room_id)
                if m["content"].get("body", "").startswith("Order D-1001")
            ]

        await owner.wait_until(
            lambda: order_notices() == ["Order D-1001: placed", "Order D-1001: paid"],
            what="the order notices",
        )
    finally:
        await marketplace.close()
        await shop.stop()
