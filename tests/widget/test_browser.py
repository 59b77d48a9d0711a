"""The widget as a buyer uses it: Debian's Chromium on the demo shop, a real bridge and Synapse.

Everything asserted is something the buyer sees on the page: text, the ✓ and ✓✓, the
unread badge. The seller is a real Matrix client.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import nio
import pytest
from PIL import Image
from playwright.async_api import Browser, Locator, Page, Route, expect

from tests.conftest import SITE, BridgeRunner, Sites
from tests.support import files
from tests.support.browser import SLOW, Shop, Widget, signed_in
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.libretranslate import FakeLibreTranslate
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]


async def test_a_buyer_asks_on_a_product_page_and_the_seller_answers(
    browser: Browser, shop: Shop
) -> None:
    widget = await signed_in(browser, shop, "Anna", "kettle-1")
    await expect(widget.launcher).to_be_visible()
    await expect(widget.badge).to_be_hidden()
    await widget.screenshot("widget-closed.png")

    room_id = await _ask_and_get_an_answer(widget, shop)
    await _replies_count_on_the_badge_while_closed(widget, shop, room_id)
    await _a_reload_shows_the_same_history(widget)
    await _the_list_holds_every_conversation(widget, shop, room_id)
    await widget.page.context.close()


async def _ask_and_get_an_answer(widget: Widget, shop: Shop) -> str:
    # Opening puts the buyer in the message box; Enter sends.
    await widget.launcher.click()
    await expect(widget.page.get_by_role("dialog", name="Electric kettle 1.7 l")).to_be_visible()
    await expect(widget.message_box).to_be_focused()
    await widget.ask("Hello! Is this kettle in stock?")
    await expect(widget.message_box).to_have_value("")

    # It reaches the seller's room for this buyer and product: ✓ in the page.
    room_id = await shop.room_of("anna")
    await shop.join(room_id)
    question = await shop.question(room_id, "Hello! Is this kettle in stock?")
    assert question["sender"] == "@bazaar_shop_anna:localhost"
    context = await shop.owner.state(room_id, "io.bazaar.context")
    assert (context["type"], context["id"]) == ("product", "kettle-1")
    await expect(widget.ticks).to_have_text("✓", timeout=SLOW)

    # The seller reads it: ✓✓.
    await shop.owner.client.update_receipt_marker(room_id, question["event_id"])
    await expect(widget.ticks).to_have_text("✓✓", timeout=SLOW)

    # The seller types, then answers with formatting.
    await shop.owner.client.room_typing(room_id, True, timeout=10_000)
    await expect(widget.page.get_by_text("Olga is typing…")).to_be_visible(timeout=SLOW)
    await shop.owner.send(
        room_id,
        {
            "msgtype": "m.text",
            "body": "Yes, two left.",
            "format": "org.matrix.custom.html",
            "formatted_body": "Yes, <b>two</b> left.",
        },
    )
    await expect(widget.bubble("Yes, two left.")).to_be_visible(timeout=SLOW)
    await expect(widget.bubble("Yes, two left.").locator("b")).to_have_text("two")
    await expect(widget.page.get_by_text("Olga is typing…")).to_be_hidden()
    await expect(widget.badge).to_be_hidden()  # read as it arrived: the chat is open
    await widget.assert_accessible()
    await widget.screenshot("widget-open.png")
    return room_id


async def _replies_count_on_the_badge_while_closed(
    widget: Widget, shop: Shop, room_id: str
) -> None:
    # Escape closes and returns to the launcher.
    await widget.page.keyboard.press("Escape")
    await expect(widget.page.get_by_role("dialog")).to_be_hidden()
    await expect(widget.launcher).to_be_focused()
    await shop.owner.send_text(room_id, "They ship tomorrow.")
    await expect(widget.badge_count).to_have_text("1", timeout=SLOW)
    await shop.owner.send_text(room_id, "Anything else?")
    await expect(widget.badge_count).to_have_text("2", timeout=SLOW)

    # Opening shows them and clears the badge.
    await widget.launcher.click()
    await expect(widget.bubble("Anything else?")).to_be_visible()
    await expect(widget.badge).to_be_hidden(timeout=SLOW)
    assert await widget.bubbles() == [
        "Hello! Is this kettle in stock?",
        "Yes, two left.",
        "They ship tomorrow.",
        "Anything else?",
    ]


async def _a_reload_shows_the_same_history(widget: Widget) -> None:
    history = await widget.bubbles()
    await widget.page.reload()
    await expect(widget.launcher).to_be_visible()
    await expect(widget.badge).to_be_hidden()
    await widget.launcher.click()
    await expect(widget.bubble("Anything else?")).to_be_visible()
    assert await widget.bubbles() == history
    await expect(widget.ticks).to_have_text("✓✓")


async def _the_list_holds_every_conversation(widget: Widget, shop: Shop, room_id: str) -> None:
    # On another product page the first message starts a second conversation.
    page = widget.page
    await page.goto(f"{shop.url}/p/mug-3")
    await widget.launcher.click()
    await expect(
        page.get_by_text("Ask the seller about “Stoneware mugs, set of two”.")
    ).to_be_visible()
    await widget.ask("Are they microwave safe?")
    await expect(widget.ticks).to_have_text("✓", timeout=SLOW)
    assert await widget.bubbles() == ["Are they microwave safe?"]

    # The list holds both, newest first, with the kettle's new reply counted as unread.
    await shop.owner.send_text(room_id, "P.S. The lid is stainless steel.")
    await page.get_by_role("button", name="All conversations").click()
    entries = page.get_by_role("list", name="Your conversations").get_by_role("button")
    await expect(entries).to_have_count(2)
    kettle, mugs = entries.nth(0), entries.nth(1)
    await expect(kettle).to_contain_text("Electric kettle 1.7 l", timeout=SLOW)
    await expect(kettle).to_contain_text("P.S. The lid is stainless steel.")
    await expect(kettle.locator(".count")).to_have_text("1")
    await expect(mugs).to_contain_text("Stoneware mugs, set of two")
    await expect(mugs).to_contain_text("Are they microwave safe?")
    await expect(widget.badge_count).to_have_text("1")
    await widget.assert_accessible()
    await widget.screenshot("widget-conversations.png")

    # Opening the kettle's conversation from the list reads the reply.
    await kettle.click()
    await expect(widget.bubble("P.S. The lid is stainless steel.")).to_be_visible()
    await expect(widget.badge).to_be_hidden(timeout=SLOW)


async def test_the_stream_resumes_after_the_connection_drops(browser: Browser, shop: Shop) -> None:
    widget = await signed_in(browser, shop, "Boris", "teapot-2")
    page = widget.page
    await widget.launcher.click()
    await widget.ask("Does it come with a strainer?")
    room_id = await shop.room_of("boris")
    await shop.join(room_id)
    await shop.question(room_id, "Does it come with a strainer?")
    answer_id = await shop.owner.send_text(room_id, "Yes, a steel one.")
    await expect(widget.bubble("Yes, a steel one.")).to_be_visible(timeout=SLOW)

    # The network goes away and the stream with it; the seller answers meanwhile.
    await page.evaluate("window.__streamDown = true")
    await page.context.set_offline(True)
    await expect(page.get_by_text("Reconnecting…")).to_be_visible(timeout=SLOW)
    aside_id = await shop.owner.send_text(room_id, "It also fits the mugs.")

    async def stored() -> bool:
        found = await shop.marketplace.ok("GET", "/conversations", params={"buyer_id": "boris"})
        conversation_id = found["conversations"][0]["conversation_id"]
        listed = await shop.marketplace.ok("GET", f"/conversations/{conversation_id}/messages")
        return any(m["text"] == "It also fits the mugs." for m in listed["messages"])

    await eventually(stored, what="the reply stored by the bridge")
    await expect(widget.bubble("It also fits the mugs.")).to_have_count(0)

    # Back online: the widget resumes where it stopped and the reply appears, once.
    await page.evaluate("window.__streamDown = false")
    await page.context.set_offline(False)
    await expect(widget.bubble("It also fits the mugs.")).to_be_visible(timeout=SLOW)
    await expect(page.get_by_text("Reconnecting…")).to_be_hidden()
    assert await widget.bubbles() == [
        "Does it come with a strainer?",
        "Yes, a steel one.",
        "It also fits the mugs.",
    ]

    # The seller corrects one answer and takes back the other: the page follows.
    await shop.owner.send(
        room_id,
        {
            "msgtype": "m.text",
            "body": "* Yes, a stainless steel one.",
            "m.new_content": {"msgtype": "m.text", "body": "Yes, a stainless steel one."},
            "m.relates_to": {"rel_type": "m.replace", "event_id": answer_id},
        },
    )
    edited = widget.message("Yes, a stainless steel one.")
    await expect(edited).to_contain_text("edited", timeout=SLOW)
    aside = widget.message("It also fits the mugs.")
    await shop.owner.redact(room_id, aside_id)
    await expect(aside).to_have_count(0, timeout=SLOW)
    assert await widget.bubbles() == [
        "Does it come with a strainer?",
        "Yes, a stainless steel one.",
    ]
    await page.context.close()


async def test_a_message_that_failed_is_sent_once_on_retry(browser: Browser, shop: Shop) -> None:
    widget = await signed_in(browser, shop, "Chen", "grinder-4")
    page = widget.page
    await widget.launcher.click()

    # The network fails just as the message is posted.
    async def lose_posts(route: Route) -> None:
        if route.request.method == "POST":
            await route.abort("internetdisconnected")
        else:
            await route.continue_()

    messages = re.compile(r".*/widget/v1/conversations/[^/]+/messages$")
    await page.route(messages, lose_posts)
    await widget.ask("How fine does it grind?")
    await expect(page.get_by_text("Not sent")).to_be_visible(timeout=SLOW)

    # Retry sends it: ✓ in the page, and the seller gets it once.
    await page.unroute(messages)
    await page.get_by_role("button", name="Retry").click()
    await expect(widget.ticks).to_have_text("✓", timeout=SLOW)
    await expect(page.get_by_text("Not sent")).to_be_hidden()
    room_id = await shop.room_of("chen")
    await shop.join(room_id)
    await shop.question(room_id, "How fine does it grind?")
    await page.reload()
    await widget.launcher.click()
    await expect(widget.bubble("How fine does it grind?")).to_be_visible()
    assert await widget.bubbles() == ["How fine does it grind?"]
    assert shop.owner.conversation(room_id) == ["How fine does it grind?"]
    await page.context.close()


async def test_a_signed_out_buyer_is_asked_to_sign_in_in_the_page_language(
    browser: Browser, shop: Shop
) -> None:
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    await page.goto(f"{shop.url}/lang/ru?next=/p/kettle-1")
    await page.get_by_role("button", name="Задать вопрос").click()
    await expect(page.get_by_text("Войдите, чтобы задать вопрос продавцу.")).to_be_visible()
    await expect(page.locator("bazaar-chat").get_by_role("textbox")).to_have_count(0)
    await Widget(page).assert_accessible()
    await page.get_by_role("button", name="Закрыть чат").click()
    await expect(page.get_by_text("Войдите, чтобы задать вопрос продавцу.")).to_be_hidden()
    await context.close()


def shut_words(page: Page, text: str) -> Locator:
    """What a blocked conversation says in place of the composer, exactly; the screen-reader
    live region may repeat the words for a moment, and is not what is on screen."""
    return page.locator(".shut p").filter(has_text=re.compile(f"^{re.escape(text)}$"))


BLOCKED = "You blocked this seller. New messages cannot be sent."


async def test_a_buyer_blocks_the_seller_after_confirming_and_unblocks(
    browser: Browser, shop: Shop
) -> None:
    widget = await signed_in(browser, shop, "Dana", "kettle-1")
    page = widget.page
    await widget.launcher.click()
    await widget.ask("Is it loud when it boils?")
    room_id = await shop.room_of("dana")
    await shop.join(room_id)
    await shop.question(room_id, "Is it loud when it boils?")
    await shop.owner.send_text(room_id, "Call me, I'll tell you all about it.")
    await expect(widget.bubble("Call me, I'll tell you all about it.")).to_be_visible(timeout=SLOW)

    # "Block seller" asks first, inside the chat; Cancel has the focus, Escape cancels.
    more = page.get_by_role("button", name="More actions")
    confirm = page.get_by_role("alertdialog", name="Block this seller?")
    await more.click()
    await page.get_by_role("button", name="Block seller").click()
    await expect(confirm).to_be_visible()
    await expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    await widget.assert_accessible()
    await widget.screenshot("widget-block-confirm.png")
    await page.keyboard.press("Escape")
    await expect(confirm).to_be_hidden()
    await expect(page.get_by_role("dialog", name="Electric kettle 1.7 l")).to_be_visible()
    await expect(more).to_be_focused()
    await expect(widget.message_box).to_be_visible()

    # Confirmed: the composer gives way to the notice and the seller can't post any more.
    await more.press("Enter")
    await page.get_by_role("button", name="Block seller").press("Enter")
    await confirm.get_by_role("button", name="Block", exact=True).click()
    await expect(shut_words(page, BLOCKED)).to_be_visible()
    await expect(shut_words(page, BLOCKED)).to_be_focused()
    await expect(confirm).to_be_hidden()
    await expect(widget.message_box).to_be_hidden()
    await expect(page.get_by_role("button", name="Send")).to_be_hidden()
    await expect(more).to_be_hidden()
    await widget.assert_accessible()
    await widget.screenshot("widget-blocked.png")

    async def members_muted() -> bool:
        levels = await shop.owner.state(room_id, "m.room.power_levels")
        owner_level = await shop.owner.level(room_id, shop.owner.user_id)
        return bool(levels.get("events_default", 0) > owner_level)

    await shop.owner.wait_until_async(members_muted, what="the room closed to the seller")
    refused = await shop.owner.client.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": "Hello? Please answer!"}
    )
    assert isinstance(refused, nio.RoomSendError), refused

    # The list shows it under "Blocked"; opening it from there shows the notice again.
    await page.get_by_role("button", name="All conversations").click()
    blocked = page.get_by_role("list", name="Blocked").get_by_role("button")
    await expect(blocked).to_have_count(1)
    await expect(blocked).to_contain_text("Electric kettle 1.7 l")
    await expect(page.get_by_role("list", name="Your conversations")).to_be_hidden()
    await widget.assert_accessible()
    await blocked.click()
    await expect(shut_words(page, BLOCKED)).to_be_visible()

    # Unblocked: the composer is back and a message reaches the seller again.
    await page.get_by_role("button", name="Unblock seller").click()
    await expect(widget.message_box).to_be_focused()
    await expect(shut_words(page, BLOCKED)).to_be_hidden()
    await expect(more).to_be_visible()
    await widget.ask("Sorry, wrong button. Is it loud?")
    await shop.question(room_id, "Sorry, wrong button. Is it loud?")
    await expect(widget.message("Sorry, wrong button. Is it loud?").locator(".ticks")).to_have_text(
        "✓", timeout=SLOW
    )
    # What the seller saw: the question, their reply, the bot's word on the block and on
    # the unblock, and the buyer's next question.
    assert shop.owner.conversation(room_id) == [
        "Is it loud when it boils?",
        "Call me, I'll tell you all about it.",
        "The buyer has blocked this conversation: messages can't be sent.",
        "The buyer has unblocked this conversation.",
        "Sorry, wrong button. Is it loud?",
    ]
    await page.context.close()


async def test_the_seller_blocking_the_buyer_shows_at_once(browser: Browser, shop: Shop) -> None:
    widget = await signed_in(browser, shop, "Emil", "teapot-2")
    page = widget.page
    await widget.launcher.click()
    await widget.ask("Can it go on an induction hob?")
    room_id = await shop.room_of("emil")
    await shop.join(room_id)
    await shop.question(room_id, "Can it go on an induction hob?")
    found = await shop.marketplace.ok("GET", "/conversations", params={"buyer_id": "emil"})
    conversation_id = found["conversations"][0]["conversation_id"]

    # The seller blocks the buyer while the page is open: the notice replaces the composer,
    # names the seller, and offers no Unblock (the seller's block is the seller's to lift).
    await widget.message_box.fill("One more thing")
    await shop.marketplace.ok("POST", f"/conversations/{conversation_id}/block", {"by": "seller"})
    sellers_block = "The seller has closed this conversation. New messages cannot be sent."
    await expect(shut_words(page, sellers_block)).to_be_visible(timeout=SLOW)
    await expect(widget.message_box).to_be_hidden()
    await expect(shut_words(page, sellers_block)).to_be_focused()
    await expect(page.get_by_role("button", name="Unblock seller")).to_be_hidden()
    await widget.assert_accessible()

    # The seller unblocks: the composer comes back, with what the buyer had typed.
    await shop.marketplace.ok("POST", f"/conversations/{conversation_id}/unblock", {"by": "seller"})
    await expect(widget.message_box).to_have_value("One more thing", timeout=SLOW)
    await expect(shut_words(page, sellers_block)).to_be_hidden()
    await page.context.close()


async def test_photos_and_files_go_both_ways_in_the_page(browser: Browser, shop: Shop) -> None:
    widget = await signed_in(browser, shop, "Dana", "kettle-1")
    page = widget.page
    chat = page.locator("bazaar-chat")
    await widget.launcher.click()
    await widget.ask("Is this mark on the base normal?")
    photo = files.jpeg_with_gps(width=900, height=600)
    # The upload is held on its way until the page has shown its progress.
    held = asyncio.Event()

    async def hold_upload(route: Route) -> None:
        if route.request.method == "POST":
            await held.wait()
        await route.continue_()

    messages = re.compile(r".*/widget/v1/conversations/[^/]+/messages$")
    await page.route(messages, hold_upload)
    await chat.locator("input[type=file]").set_input_files(
        {"name": "base.jpg", "mimeType": "image/jpeg", "buffer": photo}
    )
    # The file waits in the composer until Send (test_browser_composer.py has the rest).
    await page.get_by_role("button", name="Send").click()
    await expect(page.get_by_role("progressbar", name="Uploading base.jpg")).to_be_visible()
    held.set()
    await page.unroute(messages)
    await expect(page.get_by_role("progressbar")).to_have_count(0, timeout=SLOW)
    mine = chat.locator(".msg.buyer .files button.shot img")
    await expect(mine).to_be_visible(timeout=SLOW)
    await expect(mine).to_have_attribute("alt", "base.jpg")
    assert await mine.evaluate("img => img.naturalWidth") > 0

    # The seller gets the photo as an image with a thumbnail, without the GPS position.
    room_id = await shop.room_of("dana")
    await shop.join(room_id)
    event = await shop.owner.wait_until(
        lambda: next(
            (m for m in shop.owner.messages(room_id) if m["content"].get("msgtype") == "m.image"),
            None,
        ),
        what="the photo as m.image",
    )
    assert event["content"]["info"]["thumbnail_url"].startswith("mxc://")
    status, seen = await shop.owner.download(event["content"]["url"])
    assert status == 200
    with Image.open(io.BytesIO(seen)) as image:
        assert 0x8825 not in image.getexif()
    await expect(widget.ticks.last).to_have_text("✓", timeout=SLOW)

    # A document dragged onto the chat goes the same way, as a file.
    spec = files.pdf()
    dragged = await page.evaluate_handle(
        """(bytes) => {
            const transfer = new DataTransfer();
            const file = new File([new Uint8Array(bytes)], 'spec.pdf', {type: 'application/pdf'});
            transfer.items.add(file);
            return transfer;
        }""",
        list(spec),
    )
    panel = chat.locator(".panel")
    await panel.dispatch_event("dragover", {"dataTransfer": dragged})
    await expect(panel).to_have_class(re.compile(r"\bdropping\b"))
    await panel.dispatch_event("drop", {"dataTransfer": dragged})
    await expect(panel).not_to_have_class(re.compile(r"\bdropping\b"))
    await page.get_by_role("button", name="Send").click()
    await expect(chat.locator(".msg.buyer .files button.file", has_text="spec.pdf")).to_be_visible(
        timeout=SLOW
    )
    dropped = await shop.owner.wait_until(
        lambda: next(
            (m for m in shop.owner.messages(room_id) if m["content"].get("filename") == "spec.pdf"),
            None,
        ),
        what="the dropped document as m.file",
    )
    assert dropped["content"]["msgtype"] == "m.file"
    assert await shop.owner.download(dropped["content"]["url"]) == (200, spec)

    # The seller answers with a picture and an invoice; the buyer sees and downloads them.
    picture = files.png(80, 60)
    picture_url = await shop.owner.upload(picture, "image/png", "new-base.png")
    await shop.owner.send(
        room_id,
        {
            "msgtype": "m.image",
            "body": "new-base.png",
            "url": picture_url,
            "info": {"mimetype": "image/png", "size": len(picture), "w": 80, "h": 60},
        },
    )
    invoice = files.pdf()
    invoice_url = await shop.owner.upload(invoice, "application/pdf", "invoice.pdf")
    await shop.owner.send(
        room_id,
        {
            "msgtype": "m.file",
            "body": "invoice.pdf",
            "url": invoice_url,
            "info": {"mimetype": "application/pdf", "size": len(invoice)},
        },
    )
    theirs = chat.locator(".msg.seller .files button.shot img[alt='new-base.png']")
    await expect(theirs).to_be_visible(timeout=SLOW)

    async def decoded_width() -> bool:
        return bool(await theirs.evaluate("img => img.naturalWidth") == 80)

    await eventually(decoded_width, what="the seller's picture decoded in the page")
    download_button = chat.locator(".msg.seller .files button.file", has_text="invoice.pdf")
    await expect(download_button).to_be_visible(timeout=SLOW)
    async with page.expect_download() as started:
        await download_button.click()
    download = await started.value
    assert download.suggested_filename == "invoice.pdf"
    saved = await download.path()
    assert await asyncio.to_thread(Path(saved).read_bytes) == invoice
    await widget.assert_accessible()
    await widget.screenshot("widget-attachments.png")
    await page.context.close()


async def test_a_russian_buyer_reads_the_answer_translated_with_the_original_a_click_away(
    browser: Browser, shop: Shop, libre: FakeLibreTranslate
) -> None:
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    await page.goto(f"{shop.url}/lang/ru?next=/login%3Fname%3DIvan%26next%3D/p/mug-3")
    widget = Widget(page)
    chat = page.locator("bazaar-chat")
    launcher = page.get_by_role("button", name=re.compile("^Задать вопрос"))
    await launcher.click()
    box = page.get_by_role("textbox", name="Ваше сообщение")
    question = "Здравствуйте, этот товар есть в наличии?"
    await box.fill(question)
    await box.press("Enter")
    # The buyer keeps seeing their own words; the seller reads English.
    await expect(widget.bubble(question)).to_be_visible()
    room_id = await shop.room_of("ivan")
    await shop.join(room_id)
    await shop.question(room_id, libre.expected(question, "ru", "en"))

    await shop.owner.send_text(room_id, "Yes, two left.")
    translated = libre.expected("Yes, two left.", "en", "ru")
    await expect(widget.bubble(translated)).to_be_visible(timeout=SLOW)
    toggle = chat.locator(".msg.seller .meta button.toggle")
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await toggle.click()
    await expect(widget.bubble("Yes, two left.")).to_be_visible()
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    await toggle.click()
    await expect(widget.bubble(translated)).to_be_visible()

    # When the provider is down the answer still arrives at once, marked untranslated.
    libre.fail_with_status = 503
    try:
        await shop.owner.send_text(room_id, "We ship on Monday.")
        await expect(widget.bubble("We ship on Monday.")).to_be_visible(timeout=SLOW)
        note = widget.message("We ship on Monday.").locator(".meta .note")
        await expect(note).to_have_text("Не переведено")
    finally:
        libre.fail_with_status = None
    await widget.assert_accessible()
    await widget.screenshot("widget-translated.png")
    await context.close()


# Counts the page's WebSockets and how each one closed.
SOCKET_LOG = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(url, ...rest) {
      super(url, ...rest);
      const entry = { url: String(url), closed: null };
      window.__sockets.push(entry);
      this.addEventListener('close', (event) => { entry.closed = event.code; });
    }
  };
})();
"""


async def test_a_tab_replaced_by_newer_ones_waits_until_it_is_looked_at(
    browser: Browser, shop: Shop, runner: BridgeRunner, sites: Sites
) -> None:
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    await context.add_init_script(SOCKET_LOG)
    page = await context.new_page()
    # The page's timers run on a clock the test can move on, so "it never reconnected" is
    # checked after every retry the widget could have scheduled had its time.
    await page.clock.install()
    await page.goto(f"{shop.url}/login?name=Vera&next=/p/kettle-1")
    await expect(page.get_by_text("Signed in as Vera")).to_be_visible()
    widget = Widget(page)
    await widget.launcher.click()
    await widget.ask("Does the handle stay cool?")
    room_id = await shop.room_of("vera")
    await shop.join(room_id)
    await shop.question(room_id, "Does the handle stay cool?")

    # Five more tabs of Vera's (the bridge keeps five streams a buyer): the page's is the oldest.
    tabs = BuyerClient(
        runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "vera", name="Vera")
    )
    try:
        others = [await tabs.stream() for _ in range(5)]
        await page.wait_for_function("window.__sockets[0].closed === 4000")
        await page.clock.run_for(120_000)
        assert await page.evaluate("window.__sockets.length") == 1, "it fought back"
        await expect(page.get_by_text("Reconnecting…")).to_be_hidden()

        await shop.owner.send_text(room_id, "Yes, it is insulated.")

        async def stored() -> bool:
            found = await shop.marketplace.ok("GET", "/conversations", params={"buyer_id": "vera"})
            conversation_id = found["conversations"][0]["conversation_id"]
            listed = await shop.marketplace.ok("GET", f"/conversations/{conversation_id}/messages")
            return any(m["text"] == "Yes, it is insulated." for m in listed["messages"])

        await eventually(stored, what="the reply stored by the bridge")

        # Vera comes back to this tab: it resumes where it stopped, and the reply shows.
        await page.evaluate("window.dispatchEvent(new Event('focus'))")
        await expect(widget.bubble("Yes, it is insulated.")).to_be_visible(timeout=SLOW)
        resumed = await page.evaluate("window.__sockets[1].url")
        assert "since=" in resumed
        # Now this tab is the newest: the oldest of the others made room for it.
        async with asyncio.timeout(SLOW / 1000):
            closing = await others[0].socket.receive()
            while closing.type == aiohttp.WSMsgType.TEXT:  # frames sent before it closed
                closing = await others[0].socket.receive()
        assert (closing.type, closing.data, closing.extra) == (
            aiohttp.WSMsgType.CLOSE,
            4000,
            "replaced",
        )
    finally:
        await tabs.close()
        await context.close()
