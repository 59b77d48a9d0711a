"""A manager's canned reply, as the buyer sees it in Chromium: `!t 2` from the manager's own
Matrix client reaches the page filled from the conversation, translated into the buyer's
language, under the manager's name, with the template's picture."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from playwright.async_api import Browser, expect

from tests.support import files
from tests.support.browser import SELLER, SLOW, Shop, Widget
from tests.support.libretranslate import FakeLibreTranslate
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

NewSeller = Callable[[str], Awaitable[SellerClient]]

SIZES = "Hello {buyer}! The size chart of {title} is attached. {member}"


async def test_a_managers_template_shows_in_the_page_filled_translated_with_its_file(
    browser: Browser, shop: Shop, new_seller: NewSeller, libre: FakeLibreTranslate
) -> None:
    manager = await new_seller("Maria")
    owner_only = {
        "name": "Demo Shop",
        "members": [{"user_id": shop.owner.user_id, "role": "owner"}],
    }
    await shop.marketplace.ok(
        "PUT",
        f"/sellers/{SELLER}",
        owner_only
        | {"members": [*owner_only["members"], {"user_id": manager.user_id, "role": "manager"}]},
    )
    try:
        for name, text, position in [("delivery", "We deliver in 3 days.", 1), ("sizes", SIZES, 2)]:
            await shop.marketplace.ok(
                "PUT", f"/sellers/{SELLER}/templates/{name}", {"text": text, "position": position}
            )
        status, answer = await shop.marketplace.put_file(
            f"/sellers/{SELLER}/templates/sizes/file", files.png(64, 48), "sizes.png"
        )
        assert status == 200, answer

        context = await browser.new_context(viewport={"width": 1200, "height": 800})
        page = await context.new_page()
        await page.goto(f"{shop.url}/lang/ru?next=/login%3Fname%3DOlga%26next%3D/p/mug-3")
        widget = Widget(page)
        await page.get_by_role("button", name=re.compile("^Задать вопрос")).click()
        box = page.get_by_role("textbox", name="Ваше сообщение")
        await box.fill("Какой размер у кружек?")
        await box.press("Enter")
        room_id = await shop.room_of("olga")
        await manager.wait_until(lambda: room_id in manager.invites, what="the manager's invite")
        await manager.accept_invite(room_id)

        await manager.send_text(room_id, "!t 2")
        filled = "Hello Olga! The size chart of Stoneware mugs, set of two is attached. Maria"
        translated = libre.expected(filled, "en", "ru")
        reply = widget.message(translated)
        await expect(reply).to_be_visible(timeout=SLOW)
        await expect(reply.locator(".who")).to_have_text("Maria")
        picture = reply.locator(".files button.shot img[alt='sizes.png']")
        await expect(picture).to_be_visible(timeout=SLOW)

        async def decoded() -> bool:
            return bool(await picture.evaluate("img => img.naturalWidth") == 64)

        await eventually(decoded, what="the template's picture decoded in the page")
        # The room shows what the buyer was sent; the command itself went nowhere.
        await manager.wait_until(
            lambda: [
                m
                for m in manager.messages(room_id)
                if m["content"].get("msgtype") == "m.notice"
                and translated in m["content"].get("body", "")
            ],
            what="the bot's notice of the template sent",
        )
        await expect(widget.bubble("!t 2")).to_have_count(0)
        await widget.assert_accessible()
        await context.close()
    finally:
        await shop.marketplace.ok("PUT", f"/sellers/{SELLER}", owner_only)
