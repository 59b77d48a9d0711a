"""The seller's usual reply time in the widget's header, as the buyer sees it in Chromium:
"usually replies within 2 h" beside "Online", in English and Russian, from waits stored."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.async_api import Browser, expect

from bridge.core.figures import Wait
from bridge.core.ids import BuyerID, SellerID, SiteID, UserID
from tests.conftest import SITE, BridgeRunner
from tests.support.browser import SELLER, Shop
from tests.support.waits import add_waits, stored_conversation


async def test_the_header_says_how_soon_the_seller_usually_replies(
    browser: Browser, shop: Shop, runner: BridgeRunner
) -> None:
    await shop.marketplace.ok(
        "PUT",
        f"/sellers/{SELLER}",
        {"name": "Demo Shop", "members": [{"user_id": shop.owner.user_id, "role": "owner"}]},
    )
    repository = runner.running[0].repository
    site, seller_id = SiteID(SITE), SellerID(SELLER)
    now = datetime.now(UTC)
    conversation = await stored_conversation(
        repository, site, seller_id, BuyerID("earlier"), "kettle-1", now - timedelta(days=3)
    )
    # Replies of 0.5, 1.5 and 1.7 h: the median 1.5 h reads "within 2 h".
    waits = []
    for hours_ago, took in ((50, 0.5), (30, 1.5), (10, 1.7)):
        opened = now - timedelta(hours=hours_ago)
        waits.append(
            Wait(
                conversation,
                site,
                seller_id,
                opened,
                closed_at=opened + timedelta(hours=took),
                outcome="replied",
                closed_by=UserID(shop.owner.user_id),
                wall_seconds=took * 3600,
                working_seconds=took * 3600,
            )
        )
    await add_waits(repository, waits)

    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    await page.goto(f"{shop.url}/login?name=Olga&next=/p/kettle-1")
    await page.get_by_role("button", name=re.compile("^Ask a question")).click()
    await expect(page.locator("bazaar-chat .by")).to_have_text(
        "Seller: Demo Shop · Online · usually replies within 2 h"
    )

    await page.goto(f"{shop.url}/lang/ru?next=/p/kettle-1")
    await page.get_by_role("button", name="Задать вопрос").click()
    await expect(page.locator("bazaar-chat .by")).to_contain_text("В сети · обычно отвечает за 2 ч")
    await context.close()
