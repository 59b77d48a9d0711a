"""While the database is away the APIs say so with 503 and a Retry-After, store nothing half,
and the caller's retry, once it is back, delivers the message once."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio

from bridge.demo.synapse import free_port
from tests.conftest import SITE, BridgeRunner, Homeserver, Sites, bridge_config
from tests.support import pgcluster
from tests.support.journeys import joined_conversation
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.webhooks import WebhookReceiver

pytestmark = [
    pytest.mark.synapse,
    # In CI (CI=true) a missing PostgreSQL is a failure, not a skip.
    pytest.mark.skipif(
        not pgcluster.available() and not os.environ.get("CI"),
        reason="needs PostgreSQL's initdb and pg_ctl (apt-get install postgresql)",
    ),
]

NewSeller = Callable[[str], Awaitable[SellerClient]]


@pytest_asyncio.fixture(loop_scope="session")
async def cluster() -> AsyncIterator[pgcluster.PgCluster]:
    async with pgcluster.PgCluster() as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def runner_on_cluster(
    homeserver: Homeserver,
    cluster: pgcluster.PgCluster,
    sites: Sites,
    webhooks: WebhookReceiver,
    tmp_path: Path,
) -> AsyncIterator[BridgeRunner]:
    config = bridge_config(
        homeserver, cluster.url, sites, webhooks.url, free_port(), tmp_path / "media"
    )
    bridges = BridgeRunner(replace(config))
    yield bridges
    if not cluster.running:
        await cluster.start()
    await bridges.stop_all()


async def test_a_message_sent_while_the_database_is_down_is_refused_with_503_then_sent_once(
    runner_on_cluster: BridgeRunner,
    cluster: pgcluster.PgCluster,
    sites: Sites,
    new_seller: NewSeller,
) -> None:
    await runner_on_cluster.start()
    owner = await new_seller("owner")
    marketplace = MarketplaceClient(runner_on_cluster.config.web.public_url, SITE, sites.api_token)
    try:
        conversation = await joined_conversation(marketplace, owner)
        room_id = conversation["room_id"]
        path = f"/conversations/{conversation['conversation_id']}/messages"
        body = {"text": "Is the kettle still in stock?", "client_id": "q-1"}

        await cluster.stop("immediate")
        try:
            async with marketplace.session.post(
                marketplace.base + path,
                json=body,
                headers={"Authorization": f"Bearer {sites.api_token}"},
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                refusal = await response.json()
        finally:
            await cluster.start()
        assert status == 503
        assert refusal["errcode"] == "BAZAAR_UNAVAILABLE"
        assert retry_after is not None and int(retry_after) > 0

        # Nothing of the refused call was kept: the conversation holds no message yet.
        listed = await marketplace.ok("GET", path)
        assert listed["messages"] == []
        # The marketplace retries as told, and the seller gets the question once.
        await marketplace.ok("POST", path, body)
        await marketplace.ok("POST", path, body)
        await owner.wait_until(
            lambda: body["text"] in owner.conversation(room_id), what="the question"
        )
        await owner.sync_once()
        assert owner.conversation(room_id).count(body["text"]) == 1
    finally:
        await marketplace.close()
