"""The pane in Chromium, inside a stand-in for Element: a parent page on a loopback port
that embeds the widget's URL from the room's state, as Element fills and extends it, and
answers the widget API with a real OpenID token from Synapse."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, FrameLocator, Page, expect

from tests.conftest import BridgeRunner
from tests.pane.support import BUYER, KETTLE, NewSeller, openid_token, pane_room
from tests.support.browser import ARTIFACTS
from tests.support.journeys import seller_messages
from tests.support.loopback import LoopbackServer
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse

WIDGET_ID = "bazaar_pane"

# The parent's half of the widget API: capabilities once the frame has loaded, then the
# OpenID answer, either at once or ("request") after asking the user.
PARENT_SCRIPT = """
const frame = document.getElementById('pane');
const setup = JSON.parse(document.getElementById('setup').textContent);
const paneOrigin = new URL(frame.src).origin;
window.__replies = [];
function toPane(message) { frame.contentWindow.postMessage(message, paneOrigin); }
window.addEventListener('message', (event) => {
  if (event.source !== frame.contentWindow || event.origin !== paneOrigin) return;
  const message = event.data;
  if (message.api === 'toWidget' && message.response) { window.__replies.push(message); return; }
  if (message.api !== 'fromWidget') return;
  if (message.action !== 'get_openid') { toPane({ ...message, response: {} }); return; }
  if (setup.mode === 'allowed') {
    toPane({ ...message, response: { state: 'allowed', ...setup.token } });
  } else if (setup.mode === 'blocked') {
    toPane({ ...message, response: { state: 'blocked' } });
  } else {
    toPane({ ...message, response: { state: 'request' } });
    setTimeout(() => toPane({
      api: 'toWidget', widgetId: setup.widgetId, requestId: 'openid-1',
      action: 'openid_credentials',
      data: { state: 'allowed', original_request_id: message.requestId, ...setup.token },
    }), 200);
  }
});
frame.addEventListener('load', () => toPane({
  api: 'toWidget', widgetId: setup.widgetId, requestId: 'capabilities-1',
  action: 'capabilities', data: {},
}));
"""


class ElementStandIn(LoopbackServer):
    """Serves one parent page per test: `/?setup=<n>` embeds the pane as set up."""

    def __init__(self) -> None:
        super().__init__()
        self.setups: list[dict[str, Any]] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.page)

    async def page(self, request: web.Request) -> web.Response:
        setup = self.setups[int(request.query["setup"])]
        # `</` can't end the script early: the JSON is in a data block, escaped for it.
        data = json.dumps(setup).replace("</", "<\\/")
        html = (
            '<!doctype html><html><head><meta charset="utf-8"><title>Element</title></head>'
            '<body><main><h1>Room</h1><iframe id="pane" title="Conversation" '
            f'width="380" height="700" src="{setup["src"]}"></iframe></main>'
            f'<script id="setup" type="application/json">{data}</script>'
            f"<script>{PARENT_SCRIPT}</script></body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    def embed(self, widget_url: str, user_id: str, room_id: str, **setup: Any) -> str:
        """The parent page's URL; the frame's is the widget's, filled as Element fills it."""
        parent_url = f"{self.base}/?setup={len(self.setups)}"
        src = (
            widget_url.replace("$matrix_room_id", quote(room_id, safe="")).replace(
                "$matrix_user_id", quote(user_id, safe="")
            )
            + f"&widgetId={WIDGET_ID}&parentUrl={quote(parent_url, safe='')}"
        )
        self.setups.append({"src": src, "widgetId": WIDGET_ID, **setup})
        return parent_url


@pytest_asyncio.fixture(loop_scope="session")
async def element() -> AsyncIterator[ElementStandIn]:
    server = ElementStandIn()
    await server.start()
    yield server
    await server.stop()


async def opened(
    browser: Browser, element: ElementStandIn, viewer: SellerClient, room_id: str, mode: str
) -> tuple[Page, FrameLocator]:
    widget = await viewer.state(room_id, "im.vector.modular.widgets", WIDGET_ID)
    token = await openid_token(viewer)
    url = element.embed(widget["url"], viewer.user_id, room_id, mode=mode, token=token)
    context = await browser.new_context(viewport={"width": 800, "height": 800})
    page = await context.new_page()
    await page.goto(url)
    return page, page.frame_locator("#pane")


async def test_the_pane_shows_the_conversation_and_a_click_sends_a_template(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    browser: Browser,
    element: ElementStandIn,
) -> None:
    await runner.start()
    room = await pane_room(marketplace, new_seller)
    page, pane = await opened(browser, element, room.manager, room.room_id, "request")

    await expect(pane.locator("#context-title")).to_have_text(KETTLE["title"], timeout=30_000)
    buyer = pane.get_by_role("region", name="Buyer")
    await expect(buyer.get_by_text(BUYER["name"], exact=True)).to_be_visible()
    await expect(buyer.get_by_text("Vilnius <b>old town</b>", exact=True)).to_be_visible()
    await expect(buyer).not_to_contain_text("anna@example.com")
    # The buyer's markup stayed text: no element came of it.
    assert await pane.locator("img, script:not([src]), b").count() == 0
    # The page answered the parent's capabilities request, asking for none.
    replies = await page.evaluate("window.__replies")
    assert [r["response"] for r in replies if r["action"] == "capabilities"] == [
        {"capabilities": []}
    ]

    template = pane.get_by_role("button", name="Send the template hello")
    expected = f"Hello {BUYER['name']}, about {KETTLE['title']}!"
    await expect(template).to_contain_text(expected)
    await template.click()
    await expect(pane.get_by_text("Sent “hello” to the buyer.")).to_be_visible()

    async def buyer_got_it() -> list[str]:
        return await seller_messages(marketplace, room.conversation_id)

    assert await eventually(buyer_got_it, what="the template at the buyer") == [expected]
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "context-pane.png"))
    await page.context.close()


async def test_the_pane_refuses_a_user_who_may_not_see_the_room(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    browser: Browser,
    element: ElementStandIn,
) -> None:
    await runner.start()
    room = await pane_room(marketplace, new_seller)
    stranger = await new_seller("stranger")
    # The stranger reads the widget's URL as a member would see it; the token is theirs.
    widget = await room.owner.state(room.room_id, "im.vector.modular.widgets", WIDGET_ID)
    token = await openid_token(stranger)
    url = element.embed(widget["url"], stranger.user_id, room.room_id, mode="allowed", token=token)
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(url)
    pane = page.frame_locator("#pane")
    await expect(pane.get_by_role("alert")).to_have_text(
        re.compile("not a member of this conversation"), timeout=30_000
    )
    await expect(pane.locator("#context-title")).to_have_count(0)
    assert KETTLE["title"] not in await pane.locator("body").inner_text()

    # A user who does not let the pane know them reads a plain sentence.
    blocked = element.embed(
        widget["url"], room.owner.user_id, room.room_id, mode="blocked", token={}
    )
    await page.goto(blocked)
    await expect(pane.get_by_role("alert")).to_have_text(
        re.compile("did not let the pane know who you are")
    )
    await context.close()
