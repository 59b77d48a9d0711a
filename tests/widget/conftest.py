"""The browser tests' shared fixtures: one Chromium, and the demo shop on a bridge that
translates through a local LibreTranslate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from bridge.config import TranslationConfig
from bridge.demo.shop import DemoShop
from bridge.demo.synapse import free_port
from tests.conftest import SITE, BridgeRunner, Sites
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, SELLER, Shop, require_chromium
from tests.support.libretranslate import FakeLibreTranslate
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient

NewSeller = Callable[[str], Awaitable[SellerClient]]


@pytest_asyncio.fixture(loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def libre() -> AsyncIterator[FakeLibreTranslate]:
    server = FakeLibreTranslate()
    await server.start()
    yield server
    await server.close()


@pytest_asyncio.fixture(loop_scope="session")
async def shop(
    runner: BridgeRunner,
    sites: Sites,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    libre: FakeLibreTranslate,
) -> AsyncIterator[Shop]:
    """The demo shop on its own port, allowed to call the bridge from the browser; the
    bridge translates through a local LibreTranslate (the seller writes English)."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    config = runner.config
    runner.config = replace(
        config,
        sites=tuple(replace(site, allowed_origins=(origin,)) for site in config.sites),
        translation=TranslationConfig(provider="libre", url=libre.url, timeout_seconds=5),
    )
    await runner.start()
    owner = await new_seller("Olga")
    await marketplace.ok(
        "PUT",
        f"/sellers/{SELLER}",
        {"name": "Demo Shop", "members": [{"user_id": owner.user_id, "role": "owner"}]},
    )
    demo = DemoShop(
        site=SITE,
        seller=SELLER,
        widget_secret=sites.widget_secret,
        bridge_url=runner.config.web.public_url,
        port=port,
    )
    await demo.start()
    try:
        yield Shop(demo.url, owner, marketplace)
    finally:
        await demo.stop()
