"""The widget's composer, header, sign-in panel, times and ticks, as a buyer sees them in Chromium.

The same demo shop, bridge and Synapse as test_browser.py; the seller is a real Matrix
client. Where a test needs the element to differ from the demo's (a `login_url`, a token
that outlives a moved clock), it sets those attributes as the demo's page loads.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from axe_playwright_python.async_playwright import Axe
from PIL import Image
from playwright.async_api import Browser, Locator, Page, Route, expect

from tests.conftest import SITE, Sites
from tests.support import files
from tests.support.browser import SLOW, Shop, Widget, signed_in
from tests.support.buyer import buyer_token

HELD = "To send with your message"
# en-GB's short months, as Chromium's ICU writes them ("Sept", not "Sep").
EN_GB_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sept", "Oct", "Nov", "Dec")


def contrast(first: tuple[int, ...], second: tuple[int, ...]) -> float:
    """WCAG 2's contrast ratio of two sRGB colours."""

    def luminance(rgb: tuple[int, ...]) -> float:
        def channel(value: int) -> float:
            c = value / 255
            return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

        red, green, blue = (channel(v) for v in rgb[:3])
        return 0.2126 * red + 0.7152 * green + 0.0722 * blue

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def rgb(css: str) -> tuple[int, ...]:
    """`rgb(29, 78, 216)` → (29, 78, 216)."""
    found = re.fullmatch(r"rgba?\((\d+), (\d+), (\d+)(?:, 1)?\)", css)
    assert found, f"not an opaque colour: {css}"
    return tuple(int(v) for v in found.groups())


# An element's text colour and the colour behind it: the first opaque background up its
# ancestors, through the shadow root to the page.
COLOURS = """el => {
  let node = el;
  let background = 'rgb(255, 255, 255)';
  while (node) {
    if (node.nodeType === 1) {
      const colour = getComputedStyle(node).backgroundColor;
      if (colour !== 'rgba(0, 0, 0, 0)' && colour !== 'transparent') { background = colour; break; }
    }
    node = node.parentNode || node.host;
  }
  return [getComputedStyle(el).color, background];
}"""


async def give_widget(page: Page, **attributes: str) -> None:
    """Gives the `<bazaar-chat>` of every page this tab loads these attributes, as if the
    shop's HTML had them: set when the parser is done, before the deferred widget.js runs.
    (Rewriting the HTML in a route would not do: Chromium then refuses the page's loopback
    script.)"""
    await page.add_init_script(
        f"""(() => {{
  const attributes = {json.dumps(attributes)};
  document.addEventListener('readystatechange', () => {{
    if (document.readyState !== 'interactive') return;
    for (const chat of document.querySelectorAll('bazaar-chat')) {{
      for (const [name, value] of Object.entries(attributes)) chat.setAttribute(name, value);
    }}
  }});
}})();"""
    )


async def color_contrast_violations(page: Page) -> list[Any]:
    results = await Axe().run(page, context="bazaar-chat", options={"runOnly": ["color-contrast"]})
    violations: list[Any] = results.response["violations"]
    return violations


async def test_a_photo_waits_in_the_composer_and_goes_with_its_caption(
    browser: Browser, shop: Shop
) -> None:
    widget = await signed_in(browser, shop, "Gina", "kettle-1")
    page = widget.page
    chat = page.locator("bazaar-chat")
    sent = chat.locator(".msg.buyer")
    await widget.launcher.click()
    caption = "Is this scratch on the lid normal?"
    await widget.message_box.fill(caption)

    # The chosen photo waits in the composer with its preview; nothing is sent yet.
    await chat.locator("input[type=file]").set_input_files(
        {"name": "lid.jpg", "mimeType": "image/jpeg", "buffer": files.jpeg_with_gps(900, 600)}
    )
    held = page.get_by_role("list", name=HELD).get_by_role("listitem")
    await expect(held).to_have_count(1)
    await expect(held).to_contain_text("lid.jpg")
    await expect(held).to_contain_text("kB")
    preview = held.locator("img")
    await expect(preview).to_be_visible()
    assert await preview.evaluate("img => img.naturalWidth") > 0, "the preview is not drawn"
    await expect(widget.message_box).to_have_value(caption)
    await expect(widget.message_box).to_be_focused()
    await expect(sent).to_have_count(0)

    # A document dropped on the chat joins it, as an icon, its name and size.
    dragged = await page.evaluate_handle(
        """(bytes) => {
            const transfer = new DataTransfer();
            const file = new File([new Uint8Array(bytes)], 'manual.pdf', {type: 'application/pdf'});
            transfer.items.add(file);
            return transfer;
        }""",
        list(files.pdf()),
    )
    panel = chat.locator(".panel")
    await panel.dispatch_event("dragover", {"dataTransfer": dragged})
    await expect(panel).to_have_attribute("data-drop", "Drop the file here to attach it")
    await panel.dispatch_event("drop", {"dataTransfer": dragged})
    await expect(held).to_have_count(2)
    document = held.filter(has_text="manual.pdf")
    await expect(document).to_contain_text(f"{len(files.pdf())} bytes")
    await expect(document.locator("svg")).to_be_visible()
    await expect(document.locator("img")).to_have_count(0)
    await expect(sent).to_have_count(0)
    await widget.assert_accessible()
    await widget.screenshot("widget-composer-held.png")

    # × takes the document out again; the focus goes back to the message box.
    await page.get_by_role("button", name="Remove manual.pdf").click()
    await expect(held).to_have_count(1)
    await expect(held).to_contain_text("lid.jpg")
    await expect(widget.message_box).to_be_focused()

    # Enter sends the photo and the text as one message, and empties the composer.
    await widget.message_box.press("Enter")
    await expect(sent).to_have_count(1)
    await expect(sent.locator(".files")).to_be_visible()
    await expect(sent.locator(".bubble")).to_have_text(caption)
    await expect(page.get_by_role("list", name=HELD)).to_be_hidden()
    await expect(widget.message_box).to_have_value("")
    await expect(sent.locator("button.shot img")).to_have_attribute("alt", "lid.jpg", timeout=SLOW)
    await expect(widget.ticks).to_have_text("✓", timeout=SLOW)
    await expect(sent).to_have_count(1)  # the removed document never went

    # The seller gets one image whose body is the caption; no separate text.
    room_id = await shop.room_of("gina")
    await shop.join(room_id)
    event = await shop.question(room_id, caption)
    assert event["content"]["msgtype"] == "m.image"
    assert event["content"]["filename"] == "lid.jpg"
    assert shop.owner.conversation(room_id) == [caption]
    await widget.screenshot("widget-composer-sent.png")
    await page.context.close()


async def test_the_header_names_the_seller_beside_the_product(browser: Browser, shop: Shop) -> None:
    widget = await signed_in(browser, shop, "Hugo", "teapot-2")
    page = widget.page
    await widget.launcher.click()
    dialog = page.get_by_role("dialog", name="Cast-iron teapot 0.9 l")
    title = dialog.get_by_role("heading", name="Cast-iron teapot 0.9 l")
    seller = dialog.locator(".head .by")
    await widget.ask("Is the enamel food safe?")
    # The conversation's view names the seller as soon as it exists, with their state (the
    # demo seller has no hours: always open).
    await expect(seller).to_have_text("Seller: Demo Shop · Online")
    await expect(seller).to_be_visible()
    title_box, seller_box = await title.bounding_box(), await seller.bounding_box()
    assert title_box and seller_box
    assert seller_box["y"] >= title_box["y"] + title_box["height"] - 1, "not under the title"
    assert abs(seller_box["x"] - title_box["x"]) < 1, "not aligned with the title"
    assert await color_contrast_violations(page) == []
    await widget.screenshot("widget-header-seller.png")

    # The list names no seller in the header; on a reload the name is there at once.
    await page.get_by_role("button", name="All conversations").click()
    await expect(seller).to_be_hidden()
    await page.reload()
    await widget.launcher.click()
    await expect(seller).to_have_text("Seller: Demo Shop · Online")

    # Another product of the same seller, before its first message: the name is known.
    await page.goto(f"{shop.url}/p/grinder-4")
    await widget.launcher.click()
    await expect(page.get_by_text("Ask the seller about “Hand coffee grinder”.")).to_be_visible()
    await expect(
        page.get_by_role("dialog", name="Hand coffee grinder").locator(".head .by")
    ).to_have_text("Seller: Demo Shop · Online")
    await page.context.close()


async def test_a_signed_out_buyer_gets_a_short_panel_with_the_shops_sign_in_link(
    browser: Browser, shop: Shop
) -> None:
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    login = "/login?name=Lena&next=/p/kettle-1"
    await give_widget(page, login_url=login)
    await page.goto(f"{shop.url}/p/kettle-1")
    await Widget(page).launcher.click()
    dialog = page.get_by_role("dialog", name="Chat with the seller")
    await expect(dialog).to_contain_text("Sign in to ask the seller a question.")
    link = dialog.get_by_role("link", name="Sign in")
    await expect(link).to_have_attribute("href", f"{shop.url}{login}")
    box = await dialog.bounding_box()
    assert box and box["height"] < 200, f"a chat-sized panel ({box}) for one sentence"
    await Widget(page).assert_accessible()
    await Widget(page).screenshot("widget-sign-in.png")

    # The link is the shop's own sign-in; back on the page, the buyer can ask.
    await link.click()
    await expect(page.get_by_text("Signed in as Lena")).to_be_visible()
    await Widget(page).launcher.click()
    await expect(Widget(page).message_box).to_be_focused()
    await context.close()

    # In Russian, the same link in Russian words.
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    await give_widget(page, login_url="/enter")
    await page.goto(f"{shop.url}/lang/ru?next=/p/mug-3")
    await page.get_by_role("button", name="Задать вопрос").click()
    dialog = page.get_by_role("dialog", name="Чат с продавцом")
    await expect(dialog).to_contain_text("Войдите, чтобы задать вопрос продавцу.")
    await expect(dialog.get_by_role("link", name="Войдите")).to_have_attribute(
        "href", f"{shop.url}/enter"
    )
    await context.close()


async def test_a_buyer_who_opens_the_chat_before_it_has_loaded_can_type_once_it_has(
    browser: Browser, shop: Shop
) -> None:
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    asked, answer = asyncio.Event(), asyncio.Event()

    async def slow_list(route: Route) -> None:
        # The buyer's conversations take their time, as on a slow network.
        if route.request.method == "GET":
            asked.set()
            await answer.wait()
        await route.continue_()

    await page.route(re.compile(r".*/widget/v1/conversations(\?.*)?$"), slow_list)
    await page.goto(f"{shop.url}/login?name=Lena&next=/p/kettle-1")
    await expect(page.get_by_text("Signed in as Lena")).to_be_visible()
    await asyncio.wait_for(asked.wait(), 30)
    await Widget(page).launcher.click()
    await expect(Widget(page).message_box).to_have_count(0)
    answer.set()
    await expect(Widget(page).message_box).to_be_focused()
    await context.close()


async def test_without_a_usable_login_url_the_sign_in_words_are_plain(
    browser: Browser, shop: Shop
) -> None:
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    sentence = page.locator("bazaar-chat .panel .pad p")
    # No login_url: the demo's page as it is (it slots in its own link to the name field).
    await page.goto(f"{shop.url}/p/kettle-1")
    await Widget(page).launcher.click()
    await expect(sentence).to_have_text("Sign in to ask the seller a question.")
    await expect(sentence.locator("a")).to_have_count(0)
    await expect(page.locator("bazaar-chat > a[slot=signin]")).to_be_visible()
    box = await page.get_by_role("dialog", name="Chat with the seller").bounding_box()
    assert box and box["height"] < 200
    # A login_url that would run script is not made a link.
    await give_widget(page, login_url="javascript:alert(1)")
    await page.goto(f"{shop.url}/p/teapot-2")
    await Widget(page).launcher.click()
    await expect(sentence).to_have_text("Sign in to ask the seller a question.")
    await expect(sentence.locator("a")).to_have_count(0)
    await context.close()


def _other_day_this_year(moment: datetime) -> datetime:
    """Two days later, or earlier when later is already next year."""
    later = moment + timedelta(days=2)
    return later if later.year == moment.year else moment - timedelta(days=2)


async def test_times_before_today_show_their_date_in_the_buyers_way(
    browser: Browser, shop: Shop, sites: Sites
) -> None:
    # The page's clock is moved on by days, past the demo's one-day token: this one lasts.
    token = buyer_token(sites.widget_secret, SITE, "iris", name="Iris", expires_in=1000 * 86400)
    context = await browser.new_context(
        viewport={"width": 1200, "height": 800}, locale="en-GB", timezone_id="UTC"
    )
    page = await context.new_page()
    await give_widget(page, token=token)
    widget = Widget(page)
    await page.goto(f"{shop.url}/p/kettle-1")
    await widget.launcher.click()
    await widget.ask("When do you ship?")
    await expect(widget.ticks).to_have_text("✓", timeout=SLOW)
    found = await shop.marketplace.ok("GET", "/conversations", params={"buyer_id": "iris"})
    conversation_id = found["conversations"][0]["conversation_id"]
    listed = await shop.marketplace.ok("GET", f"/conversations/{conversation_id}/messages")
    created = datetime.fromisoformat(listed["messages"][0]["created_at"]).astimezone(UTC)
    shown = widget.message("When do you ship?").locator("time")
    clock = f"{created:%H:%M}"

    async def at(moment: datetime) -> Locator:
        await page.clock.set_fixed_time(moment)
        await page.reload()
        await widget.launcher.click()
        return shown

    # Later the same day: the time alone.
    same_day = created.replace(hour=23, minute=59, second=59)
    await expect(await at(same_day)).to_have_text(clock)
    # Another day: its date too, as en-GB writes it.
    date = f"{created.day} {EN_GB_MONTHS[created.month - 1]}"
    await expect(await at(_other_day_this_year(created))).to_have_text(f"{date}, {clock}")
    await widget.screenshot("widget-dated.png")
    # Another year: with the year.
    await expect(await at(created + timedelta(days=400))).to_have_text(
        f"{date} {created.year}, {clock}"
    )
    await context.close()

    # A Russian buyer reads the Russian way.
    ru_token = buyer_token(
        sites.widget_secret, SITE, "iris", name="Iris", lang="ru", expires_in=1000 * 86400
    )
    context = await browser.new_context(
        viewport={"width": 1200, "height": 800}, locale="ru-RU", timezone_id="UTC"
    )
    page = await context.new_page()
    await give_widget(page, token=ru_token)
    await page.clock.set_fixed_time(created + timedelta(days=400))
    await page.goto(f"{shop.url}/p/kettle-1")
    await page.get_by_role("button", name=re.compile("^Задать вопрос")).click()
    await expect(Widget(page).message("When do you ship?").locator("time")).to_have_text(
        re.compile(rf"^{created.day} \S+ {created.year} г\., {clock}$")
    )
    await context.close()


async def test_the_read_ticks_stand_out_from_their_background(browser: Browser, shop: Shop) -> None:
    widget = await signed_in(browser, shop, "Jana", "mug-3")
    await widget.launcher.click()
    await widget.ask("Do they come boxed?")
    room_id = await shop.room_of("jana")
    await shop.join(room_id)
    question = await shop.question(room_id, "Do they come boxed?")
    await shop.owner.client.update_receipt_marker(room_id, question["event_id"])
    await expect(widget.ticks).to_have_text("✓✓", timeout=SLOW)
    read = widget.page.locator("bazaar-chat .status.read .ticks")

    # Its colour against what is behind it: AA for text, 4.5:1.
    colour, background = (rgb(c) for c in await read.evaluate(COLOURS))
    assert contrast(colour, background) >= 4.5, (colour, background)

    # And as drawn: a 12 px ✓ is mostly anti-aliased edge, lighter than its colour. Most
    # of what the ✓✓ paints must reach 4.5:1, not only a few pixels at its centre.
    with Image.open(io.BytesIO(await read.screenshot())) as shot:
        pixels = list(shot.convert("RGB").get_flattened_data())
    ink = [p for p in pixels if contrast(p, background) > 1.05]
    strong = [p for p in ink if contrast(p, background) >= 4.5]
    assert ink and len(strong) / len(ink) >= 0.4, f"{len(strong)} of {len(ink)} pixels reach 4.5:1"

    # axe-core: no colour contrast violation in the widget (it leaves the ✓ glyphs,
    # which it takes for icons, as "incomplete": hence the checks above).
    assert await color_contrast_violations(widget.page) == []
    await widget.screenshot("widget-read-ticks.png")
    await widget.page.context.close()
