"""Who blocked whom, as the buyer sees it in Chromium and the seller reads it in Matrix.

The seller's block is the seller's to lift: the page names it and offers no Unblock. The
buyer's own block comes with its Unblock, also while the seller blocks too.
"""

from __future__ import annotations

import re

from playwright.async_api import Browser, Locator, Page, expect

from tests.support.browser import SLOW, Shop, Widget, signed_in

SELLER_CLOSED = "The seller has closed this conversation. New messages cannot be sent."
YOU_BLOCKED = "You blocked this seller. New messages cannot be sent."
BOTH = f"{SELLER_CLOSED} You have blocked this seller too."

ASKED = "Block this buyer in all your conversations? Say !block confirm within 2 minutes."
SELLER_BLOCKED = (
    "Blocked. The buyer can no longer write to you in any conversation. Say !unblock to undo."
)
SELLER_UNBLOCKED = "Unblocked. The buyer can write to you again."
BUYER_BLOCKED = "The buyer has blocked this conversation: messages can't be sent."
BUYER_UNBLOCKED = "The buyer has unblocked this conversation."
BUYER_LIFTED = (
    "The buyer has lifted their block; yours still stands. Say !unblock to let them write again."
)


class SellerRoom:
    """The conversation's room as the seller's owner reads it, the bot's notices in order."""

    def __init__(self, shop: Shop, room_id: str) -> None:
        self.shop = shop
        self.room_id = room_id
        self.said: list[str] = []

    def notices(self) -> list[str]:
        return [
            m["content"]["body"]
            for m in self.shop.owner.messages(self.room_id)
            # The buyer's profile card on first contact is not one of the notices said here.
            if m["content"].get("msgtype") == "m.notice" and "io.bazaar.card" not in m["content"]
        ]

    async def says(self, *texts: str) -> None:
        """The bot has said, so far, exactly what it said before and `texts`."""
        self.said.extend(texts)
        await self.shop.owner.wait_until(
            lambda: self.notices() == self.said, what=f"the notices {self.said}"
        )

    async def command(self, text: str, answer: str) -> None:
        await self.shop.owner.send_text(self.room_id, text)
        await self.says(answer)

    async def members_may_post(self) -> None:
        owner = self.shop.owner

        async def open_to_members() -> bool:
            levels = await owner.state(self.room_id, "m.room.power_levels")
            owner_level = await owner.level(self.room_id, owner.user_id)
            return bool(levels.get("events_default", 0) <= owner_level)

        await owner.wait_until_async(open_to_members, what="the room open to the members")

    async def block(self) -> None:
        await self.command("!block", ASKED)
        await self.command("!block confirm", SELLER_BLOCKED)


def notice(page: Page, text: str) -> Locator:
    """The blocked conversation's words, exactly; the screen-reader live region may
    repeat the words for a moment, and is not what is on screen."""
    return page.locator(".shut p").filter(has_text=re.compile(f"^{re.escape(text)}$"))


async def asked(browser: Browser, shop: Shop, name: str, product: str) -> tuple[Widget, SellerRoom]:
    """A buyer has asked on a product page and the seller has the question in Matrix."""
    widget = await signed_in(browser, shop, name, product)
    await widget.launcher.click()
    question = f"Hello, {name} here: is it in stock?"
    await widget.ask(question)
    room_id = await shop.room_of(name.lower())
    await shop.join(room_id)
    await shop.question(room_id, question)
    return widget, SellerRoom(shop, room_id)


async def buyer_blocks(page: Page) -> None:
    await page.get_by_role("button", name="More actions").click()
    await page.get_by_role("button", name="Block seller").click()
    confirm = page.get_by_role("alertdialog", name="Block this seller?")
    await confirm.get_by_role("button", name="Block", exact=True).click()
    await expect(confirm).to_be_hidden()


async def in_russian(browser: Browser, shop: Shop, name: str, product: str) -> Page:
    """The same buyer on the same product page, signed in with the shop set to Russian."""
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    await page.goto(f"{shop.url}/lang/ru?next=/login%3Fname%3D{name}%26next%3D/p/{product}")
    await page.get_by_role("button", name="Задать вопрос").click()
    return page


async def test_a_seller_who_blocked_is_named_and_offers_no_unblock(
    browser: Browser, shop: Shop
) -> None:
    widget, room = await asked(browser, shop, "Fiona", "kettle-1")
    page = widget.page
    await room.block()

    # The page says it was the seller; there is nothing for the buyer to unblock.
    closed = notice(page, SELLER_CLOSED)
    await expect(closed).to_be_visible(timeout=SLOW)
    await expect(widget.message_box).to_be_hidden()
    await expect(page.get_by_role("button", name="Unblock seller")).to_be_hidden()
    await expect(page.get_by_text("This conversation is blocked")).to_be_hidden()
    await widget.assert_accessible()
    await widget.screenshot("widget-closed-by-seller.png")

    # Loaded afresh it says the same: the view itself names the seller.
    await page.reload()
    await widget.launcher.click()
    await expect(closed).to_be_visible()
    await expect(page.get_by_role("button", name="Unblock seller")).to_be_hidden()

    russian = await in_russian(browser, shop, "Fiona", "kettle-1")
    await expect(
        notice(russian, "Продавец закрыл эту переписку. Новые сообщения отправить нельзя.")
    ).to_be_visible()
    await expect(russian.get_by_role("button", name="Разблокировать продавца")).to_be_hidden()
    await russian.context.close()

    # Only the seller reopens it; the composer comes back at once.
    await room.command("!unblock", SELLER_UNBLOCKED)
    await expect(widget.message_box).to_be_visible(timeout=SLOW)
    await expect(closed).to_be_hidden()
    await widget.ask("Thanks, and the cord length?")
    await shop.question(room.room_id, "Thanks, and the cord length?")
    # The seller was never told of a block or unblock by the buyer.
    assert room.notices() == [ASKED, SELLER_BLOCKED, SELLER_UNBLOCKED]
    await page.context.close()


async def test_a_buyer_who_blocked_is_told_so_and_unblocks(browser: Browser, shop: Shop) -> None:
    widget, room = await asked(browser, shop, "Greta", "teapot-2")
    page = widget.page
    await buyer_blocks(page)

    mine = notice(page, YOU_BLOCKED)
    await expect(mine).to_be_visible()
    await expect(mine).to_be_focused()
    await expect(widget.message_box).to_be_hidden()
    await expect(page.get_by_role("button", name="More actions")).to_be_hidden()
    await expect(page.get_by_role("button", name="Unblock seller")).to_be_visible()
    await room.says(BUYER_BLOCKED)
    await widget.assert_accessible()
    await widget.screenshot("widget-blocked-by-buyer.png")

    russian = await in_russian(browser, shop, "Greta", "teapot-2")
    await expect(
        notice(russian, "Вы заблокировали этого продавца. Новые сообщения отправить нельзя.")
    ).to_be_visible()
    await expect(russian.get_by_role("button", name="Разблокировать продавца")).to_be_visible()
    await russian.context.close()

    await page.get_by_role("button", name="Unblock seller").click()
    await expect(widget.message_box).to_be_focused()
    await expect(mine).to_be_hidden()
    await room.says(BUYER_UNBLOCKED)
    await widget.ask("Sorry, that was a slip.")
    await shop.question(room.room_id, "Sorry, that was a slip.")
    await page.context.close()


async def test_when_both_block_the_buyer_lifts_only_their_own_block(
    browser: Browser, shop: Shop
) -> None:
    widget, room = await asked(browser, shop, "Kira", "mug-3")
    page = widget.page
    await room.block()
    await expect(notice(page, SELLER_CLOSED)).to_be_visible(timeout=SLOW)

    # The buyer may still block a seller who closed the conversation; then their own
    # Unblock appears beside the seller's words.
    await buyer_blocks(page)
    both = notice(page, BOTH)
    await expect(both).to_be_visible()
    unblock = page.get_by_role("button", name="Unblock seller")
    await expect(unblock).to_be_visible()
    await expect(page.get_by_role("button", name="More actions")).to_be_hidden()
    await room.says(BUYER_BLOCKED)
    await widget.assert_accessible()
    await widget.screenshot("widget-blocked-both.png")

    russian = await in_russian(browser, shop, "Kira", "mug-3")
    await expect(
        notice(
            russian,
            "Продавец закрыл эту переписку. Новые сообщения отправить нельзя. "
            "Вы тоже заблокировали этого продавца.",
        )
    ).to_be_visible()
    await expect(russian.get_by_role("button", name="Разблокировать продавца")).to_be_visible()
    await russian.context.close()

    # Unblocking lifts the buyer's block only: still closed by the seller, no Unblock.
    await unblock.click()
    await expect(notice(page, SELLER_CLOSED)).to_be_visible()
    await expect(both).to_be_hidden()
    await expect(unblock).to_be_hidden()
    await expect(widget.message_box).to_be_hidden()
    await room.says(BUYER_LIFTED)

    # Once the room lets the members post again (it follows the block a moment later), the
    # seller lifts theirs.
    await room.members_may_post()
    await room.command("!unblock", SELLER_UNBLOCKED)
    await expect(widget.message_box).to_be_visible(timeout=SLOW)
    await expect(notice(page, SELLER_CLOSED)).to_be_hidden()
    assert room.notices() == [ASKED, SELLER_BLOCKED, BUYER_BLOCKED, BUYER_LIFTED, SELLER_UNBLOCKED]
    await page.context.close()
