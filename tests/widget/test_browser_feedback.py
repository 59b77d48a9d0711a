"""The seller's state and chat off, as the buyer sees them in Chromium: "Online" or
"Away · replies from …" in the buyer's own time, and while chat is off the feedback form in
the composer's place, whose text reaches the seller's management room and the webhook."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, Page, expect

from bridge.core.hours import DAYS
from bridge.core.ids import SellerID, SiteID
from bridge.core.models import Buyer
from bridge.demo.shop import buyer_id_for
from bridge.widget.tokens import issue_buyer_token
from tests.conftest import SITE, BridgeRunner, Sites
from tests.support.browser import SELLER, SLOW, Shop, Widget, signed_in
from tests.support.waiting import eventually
from tests.support.webhooks import WebhookReceiver

THANKS = "Thank you! The seller has your message."
CHAT_OFF = (
    "This seller is not taking questions in chat right now. "
    "Leave the seller a message: they will get back to you."
)


async def put_seller(shop: Shop, **fields: Any) -> None:
    await shop.marketplace.ok(
        "PUT",
        f"/sellers/{SELLER}",
        {
            "name": "Demo Shop",
            "members": [{"user_id": shop.owner.user_id, "role": "owner"}],
            **fields,
        },
    )


async def opened(browser: Browser, shop: Shop, name: str, **options: Any) -> Page:
    """A signed-in buyer's product page in a browser with `options` (locale, time zone),
    the chat open."""
    context = await browser.new_context(viewport={"width": 1200, "height": 800}, **options)
    page = await context.new_page()
    await page.goto(f"{shop.url}/login?name={name}&next=/p/kettle-1")
    await page.get_by_role("button", name=re.compile("^Ask a question")).click()
    return page


async def test_chat_off_shows_the_form_and_the_seller_gets_it(
    browser: Browser, shop: Shop, runner: BridgeRunner, sites: Sites, webhooks: WebhookReceiver
) -> None:
    await put_seller(shop, chat_enabled=False)
    widget = await signed_in(browser, shop, "Hanna", "kettle-1")
    page = widget.page
    # The marketplace's token for her carries her address: the form's contact starts with it.
    buyer = Buyer(SiteID(SITE), buyer_id_for("Hanna"), "Hanna", "en", "hanna@example.org")
    token, _ = issue_buyer_token(sites.widget_secret, buyer, 3600)
    await page.locator("bazaar-chat").evaluate(
        "(chat, token) => chat.setAttribute('token', token)", token
    )
    await widget.launcher.click()

    chat = page.locator("bazaar-chat")
    await expect(chat.locator(".intro")).to_have_text(CHAT_OFF)
    contact = page.get_by_role("textbox", name="Your e-mail or phone (optional)")
    await expect(contact).to_have_value("hanna@example.org")
    # The chat's own composer is not there: no attaching, one "Your message" box.
    await expect(page.get_by_role("button", name="Attach a file")).to_be_hidden()
    await expect(widget.message_box).to_have_count(1)
    await widget.assert_accessible()

    await widget.message_box.fill("Is the kettle back in stock next week?")
    await page.get_by_role("button", name="Send").click()
    await expect(page.get_by_role("status").filter(has_text=THANKS)).to_be_visible()
    await expect(widget.message_box).to_be_hidden()
    await widget.assert_accessible()
    await widget.screenshot("widget-feedback-sent.png")

    [event] = await webhooks.wait_for("feedback.created")
    assert (event["feedback"]["text"], event["feedback"]["contact"]) == (
        "Is the kettle back in stock next week?",
        "hanna@example.org",
    )
    # The seller had no conversation yet: the form made their Space and management room.
    repository = runner.running[0].repository
    space = await eventually(
        lambda: repository.seller_space(SiteID(SITE), SellerID(SELLER)), what="the Space"
    )
    owner = shop.owner
    await owner.wait_until(lambda: space.management_id in owner.invites, what="the invite")
    await owner.accept_invite(space.management_id)
    await owner.wait_until(
        lambda: any(
            "Is the kettle back in stock next week?" in m["content"].get("body", "")
            and m["content"].get("msgtype") == "m.notice"
            for m in owner.messages(space.management_id)
        ),
        what="the feedback in the management room",
    )

    # Chat on again: the composer is back, on the next visit.
    await put_seller(shop, chat_enabled=True)
    await page.reload()
    await widget.launcher.click()
    await expect(page.get_by_role("button", name="Attach a file")).to_be_visible()
    await expect(chat.locator(".intro")).to_have_text(re.compile("^Ask the seller about"))
    await page.context.close()


async def test_the_header_says_online_or_away_in_the_buyers_own_time(
    browser: Browser, shop: Shop
) -> None:
    vilnius, tokyo = ZoneInfo("Europe/Vilnius"), ZoneInfo("Asia/Tokyo")
    # Open only on a weekday three days from the seller's today: closed now, whatever the hour.
    opens_on = datetime.now(vilnius).date() + timedelta(days=3)
    await put_seller(
        shop,
        timezone="Europe/Vilnius",
        hours={DAYS[opens_on.weekday()]: [["09:00", "10:00"]]},
    )
    page = await opened(browser, shop, "Ines", locale="en-GB", timezone_id="Asia/Tokyo")
    by = page.locator("bazaar-chat .by")
    opening = datetime.combine(opens_on, time(9, 0), vilnius).astimezone(tokyo)
    # The buyer reads the seller's 09:00 in Tokyo time ("7 Dec, 15:00" or so).
    await expect(by).to_have_text(
        re.compile(
            rf"^Seller: Demo Shop · Away · replies from {opening.day} "
            rf"{opening.strftime('%b')}, {opening.strftime('%H:%M')}$"
        )
    )
    await Widget(page).assert_accessible()
    await Widget(page).screenshot("widget-seller-away.png")

    russian = await opened(browser, shop, "Ines", locale="ru-RU", timezone_id="Asia/Tokyo")
    await russian.goto(f"{shop.url}/lang/ru?next=/p/kettle-1")
    await russian.get_by_role("button", name="Задать вопрос").click()
    await expect(russian.locator("bazaar-chat .by")).to_contain_text(
        f"Нет на месте · ответит с {opening.day}"
    )
    await expect(russian.locator("bazaar-chat .by")).to_contain_text(opening.strftime("%H:%M"))
    await russian.context.close()

    # Always open (no hours): "Online".
    await put_seller(shop)
    await page.reload()
    await page.get_by_role("button", name=re.compile("^Ask a question")).click()
    await expect(by).to_have_text("Seller: Demo Shop · Online")
    await page.context.close()


async def test_the_greeting_is_marked_as_an_automatic_reply(browser: Browser, shop: Shop) -> None:
    await put_seller(shop, greeting="Hello {buyer}, thanks for asking!")
    widget = await signed_in(browser, shop, "Jonas", "kettle-1")
    await widget.launcher.click()
    await widget.ask("Does it come with a warranty?")
    greeting = widget.message("Hello Jonas, thanks for asking!")
    await expect(greeting).to_be_visible(timeout=SLOW)
    await expect(greeting.locator(".meta")).to_contain_text("Automatic reply")
    question = widget.message("Does it come with a warranty?")
    await expect(question.locator(".meta")).not_to_contain_text("Automatic reply")
    await widget.assert_accessible()
    await widget.page.context.close()
