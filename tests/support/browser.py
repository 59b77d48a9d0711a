"""The buyer's side in a real browser: Chromium driven by Playwright, the demo shop the
widget sits in, and the widget as the buyer sees and uses it."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Locator, Page, expect

from bridge.demo.synapse import free_port
from tests.support.checkout import ROOT
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = ROOT / "test-artifacts"
SELLER = "demo-shop"
# A Matrix round trip (room, invite, delivery, receipt) takes a few seconds at most; what
# only the bridge and the page do gets a shorter wait, still generous for a busy CI machine.
SLOW = 30_000
expect.set_options(timeout=15_000)

# Lets a test cut the stream as a network would: `window.__streamDown = true` closes the open
# WebSockets and sends new ones to a port where nothing listens, until it is false again.
# (Chromium's offline mode alone may hold a closing socket open for a long time.)
STREAM_SWITCH = """
(() => {
  const Native = window.WebSocket;
  const sockets = [];
  let down = false;
  Object.defineProperty(window, '__streamDown', {
    get: () => down,
    set: (value) => {
      down = value;
      if (down) sockets.forEach((socket) => socket.close());
    },
  });
  window.WebSocket = class extends Native {
    constructor(url, ...rest) {
      super(down ? 'ws://127.0.0.1:%d/' : url, ...rest);
      sockets.push(this);
    }
  };
})();
"""


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"the browser tests need Debian's Chromium at {CHROMIUM}: apt-get install chromium"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Shop:
    url: str
    owner: SellerClient
    marketplace: MarketplaceClient

    async def room_of(self, buyer_id: str) -> str:
        """The Matrix room of the buyer's conversation, as the marketplace knows it."""

        async def listed() -> str | None:
            found = await self.marketplace.ok(
                "GET", "/conversations", params={"buyer_id": buyer_id}
            )
            rooms = [c["room_id"] for c in found["conversations"] if c.get("room_id")]
            return rooms[0] if rooms else None

        room_id = await eventually(listed, what=f"a room for {buyer_id}'s conversation")
        return room_id

    async def join(self, room_id: str) -> None:
        await self.owner.wait_until(lambda: room_id in self.owner.invites, what="the invite")
        await self.owner.accept_invite(room_id)

    async def question(self, room_id: str, text: str) -> dict[str, Any]:
        found = await self.owner.wait_until(
            lambda: [m for m in self.owner.messages(room_id) if m["content"].get("body") == text],
            what=f"the buyer's question {text!r}",
        )
        event: dict[str, Any] = found[0]
        return event


class Widget:
    """The `<bazaar-chat>` on a page, through what the buyer sees and does."""

    def __init__(self, page: Page) -> None:
        self.page = page
        chat = page.locator("bazaar-chat")
        self.launcher = page.get_by_role("button", name=re.compile("^Ask a question"))
        self.badge = chat.locator(".launcher .badge")
        self.badge_count = self.badge.locator(".count")
        self.ticks = chat.locator(".msg.buyer .ticks")
        self.message_box = page.get_by_role("textbox", name="Your message")
        self._bubbles = chat.locator(".bubble")

    def bubble(self, text: str) -> Locator:
        return self._bubbles.filter(has_text=re.compile(rf"^{re.escape(text)}$"))

    def message(self, text: str) -> Locator:
        """A whole message (bubble, time, ✓, "edited") by its exact text."""
        bubble = self.page.locator(".bubble").filter(has_text=re.compile(rf"^{re.escape(text)}$"))
        return self.page.locator("bazaar-chat .msg").filter(has=bubble)

    async def bubbles(self) -> list[str]:
        return await self._bubbles.all_inner_texts()

    async def ask(self, text: str) -> None:
        await self.message_box.fill(text)
        await self.message_box.press("Enter")
        await expect(self.bubble(text)).to_be_visible()

    async def assert_accessible(self) -> None:
        results = await Axe().run(self.page, context="bazaar-chat")
        assert results.violations_count == 0, results.generate_report()

    async def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        await self.page.screenshot(path=str(ARTIFACTS / name))


async def signed_in(browser: Browser, shop: Shop, name: str, product: str) -> Widget:
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    await context.add_init_script(STREAM_SWITCH % free_port())
    page = await context.new_page()
    await page.goto(f"{shop.url}/login?name={name}&next=/p/{product}")
    await expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()
    return Widget(page)
