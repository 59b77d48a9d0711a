"""Shared fixtures: a real Synapse for the session, bridges on real databases, a seller's client."""

from __future__ import annotations

import contextlib
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import uvloop
import yaml
from sqlalchemy.engine import make_url

from bridge.app import Bridge, Tuning
from bridge.config import Config, parse_config
from bridge.core.delivery import Backoff
from bridge.demo.synapse import EmbeddedSynapse, SynapseSettings, free_port
from bridge.marketplace.webhooks import RetryPolicy
from bridge.matrix.registration import registration
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.webhooks import WebhookReceiver

SITE = "shop"


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """Every test on the loop the bridge runs on (`python -m bridge`): uvloop's."""
    return {"uvloop": uvloop.new_event_loop}


OTHER_SITE = "bazaar2"
POSTGRES_ENV = "BAZAAR_TEST_POSTGRES_URL"

FAST = Tuning(
    delivery_backoff=Backoff(first=0.1, longest=1.0),
    webhook_retry=RetryPolicy(first=0.2, longest=1.0),
    translation_pause=1.0,
    homeserver_look_seconds=0.5,
)
# What FAST leaves a failed translation provider alone for, with room to spare.
TRANSLATION_PAUSE_OVER = 1.5


@dataclass
class Homeserver:
    """The session's Synapse and the appservice identity registered with it."""

    synapse: EmbeddedSynapse
    as_token: str
    hs_token: str
    appservice_port: int


@dataclass
class Sites:
    api_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    other_api_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    widget_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    webhook_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))


def bridge_config(
    homeserver: Homeserver,
    database_url: str,
    sites: Sites,
    webhook_url: str | None,
    web_port: int,
    media_directory: Path,
) -> Config:
    raw = bridge_settings(homeserver, database_url, sites, webhook_url, web_port, media_directory)
    return parse_config(raw, environ={})


def bridge_settings(
    homeserver: Homeserver,
    database_url: str,
    sites: Sites,
    webhook_url: str | None,
    web_port: int,
    media_directory: Path,
) -> dict[str, Any]:
    """The tests' config as its YAML file would hold it."""
    return {
        "homeserver": {"address": homeserver.synapse.address, "domain": "localhost"},
        "appservice": {
            "port": homeserver.appservice_port,
            "as_token": homeserver.as_token,
            "hs_token": homeserver.hs_token,
        },
        "database": database_url,
        "web": {"port": web_port},
        # The tests' shops serve product images from loopback.
        "media": {"directory": str(media_directory), "allow_private_fetch": True},
        "sites": [
            {
                "id": SITE,
                "name": "Test Shop",
                "language": "en",
                "api_token": sites.api_token,
                "widget_secret": sites.widget_secret,
                "webhook_url": webhook_url,
                "webhook_secret": sites.webhook_secret,
            },
            {
                "id": OTHER_SITE,
                "name": "Other Shop",
                "api_token": sites.other_api_token,
                "widget_secret": secrets.token_urlsafe(24),
            },
        ],
    }


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def homeserver(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Homeserver]:
    workdir = tmp_path_factory.mktemp("synapse")
    port = free_port()
    as_port = free_port()
    raw = {
        "homeserver": {"address": f"http://127.0.0.1:{port}", "domain": "localhost"},
        "appservice": {
            "port": as_port,
            "as_token": secrets.token_urlsafe(32),
            "hs_token": secrets.token_urlsafe(32),
        },
    }
    config = parse_config(raw, environ={})
    registration_path = workdir / "registration.yaml"
    registration_path.write_text(yaml.safe_dump(registration(config)))
    synapse = EmbeddedSynapse(
        SynapseSettings(
            workdir=workdir / "data", port=port, appservice_registrations=(registration_path,)
        )
    )
    await synapse.start()
    try:
        yield Homeserver(synapse, config.appservice.as_token, config.appservice.hs_token, as_port)
    finally:
        await synapse.stop()


async def _fresh_postgres(server_url: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    url = make_url(server_url)
    name = f"bazaar_test_{uuid.uuid4().hex[:12]}"
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()

    async def drop() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    return url.set(database=name).render_as_string(hide_password=False), drop


@pytest_asyncio.fixture(loop_scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A fresh database on the PostgreSQL server the tests are given."""
    async with _postgres_database() as url:
        yield url


@contextlib.asynccontextmanager
async def _postgres_database() -> AsyncIterator[str]:
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV}, e.g. postgresql+asyncpg://postgres@127.0.0.1/test"
        )
    url, drop = await _fresh_postgres(server)
    try:
        yield url
    finally:
        await drop()


@pytest_asyncio.fixture(params=["sqlite", "postgresql"], loop_scope="session")
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bazaar.db'}"
        return
    async with _postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'bazaar.db'}"


@pytest.fixture
def sites() -> Sites:
    return Sites()


@pytest_asyncio.fixture(loop_scope="session")
async def webhooks(sites: Sites) -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(sites.webhook_secret)
    await receiver.start()
    yield receiver
    await receiver.stop()


@dataclass
class BridgeRunner:
    """Starts and stops bridges on one database and config, as an operator would."""

    config: Config
    tuning: Tuning = FAST
    running: list[Bridge] = field(default_factory=list)

    async def start(self) -> Bridge:
        bridge = Bridge(self.config, self.tuning)
        await bridge.start()
        self.running.append(bridge)
        return bridge

    async def stop(self, bridge: Bridge) -> None:
        await bridge.stop()
        self.running.remove(bridge)

    async def stop_all(self) -> None:
        for bridge in list(self.running):
            await self.stop(bridge)


def _runner(
    homeserver: Homeserver,
    database: str,
    sites: Sites,
    webhooks: WebhookReceiver | None,
    media_directory: Path,
) -> BridgeRunner:
    config = bridge_config(
        homeserver,
        database,
        sites,
        webhooks.url if webhooks else None,
        free_port(),
        media_directory,
    )
    return BridgeRunner(config)


@pytest_asyncio.fixture(loop_scope="session")
async def runner(
    homeserver: Homeserver,
    sqlite_url: str,
    sites: Sites,
    webhooks: WebhookReceiver,
    tmp_path: Path,
) -> AsyncIterator[BridgeRunner]:
    bridges = _runner(homeserver, sqlite_url, sites, webhooks, tmp_path / "media")
    yield bridges
    await bridges.stop_all()


@pytest_asyncio.fixture(loop_scope="session")
async def runner_on_each_database(
    homeserver: Homeserver,
    database_url: str,
    sites: Sites,
    webhooks: WebhookReceiver,
    tmp_path: Path,
) -> AsyncIterator[BridgeRunner]:
    bridges = _runner(homeserver, database_url, sites, webhooks, tmp_path / "media")
    yield bridges
    await bridges.stop_all()


@pytest_asyncio.fixture(loop_scope="session")
async def marketplace(runner: BridgeRunner, sites: Sites) -> AsyncIterator[MarketplaceClient]:
    client = MarketplaceClient(runner.config.web.public_url, SITE, sites.api_token)
    yield client
    await client.close()


@pytest_asyncio.fixture(loop_scope="session")
async def new_seller(
    homeserver: Homeserver,
) -> AsyncIterator[Callable[[str], Awaitable[SellerClient]]]:
    clients: list[SellerClient] = []

    async def make(name: str) -> SellerClient:
        localpart = f"{name}-{uuid.uuid4().hex[:8]}"
        password = secrets.token_urlsafe(12)
        user_id = await homeserver.synapse.register_user(localpart, password, displayname=name)
        client = SellerClient(homeserver.synapse.address, user_id, password)
        await client.login()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def product(product_id: str = "kettle-1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "product",
        "id": product_id,
        "title": "Electric kettle 1.7 l",
        "url": f"https://shop.example/p/{product_id}",
        "price": "24.90",
        "currency": "EUR",
        **extra,
    }
