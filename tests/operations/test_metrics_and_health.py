"""What an operator's Prometheus and load balancer see of a running bridge: `/metrics`
counting a real conversation, and the health checks as the homeserver comes and goes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.demo.synapse import free_port
from tests.conftest import BridgeRunner
from tests.support.journeys import joined_conversation, seller_messages
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def get(url: str) -> tuple[int, str, str]:
    """An anonymous GET, as a scraper or a probe makes it: status, content type, body."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def scrape(base: str) -> Samples:
    status, content_type, body = await get(base + "/metrics")
    assert status == 200, body
    assert content_type.startswith("text/plain"), content_type
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def messages(samples: Samples, direction: str, outcome: str) -> float:
    return value(samples, "bazaar_messages_total", direction=direction, outcome=outcome)


def latency_count(samples: Samples, direction: str) -> float:
    return value(samples, "bazaar_delivery_latency_seconds_count", direction=direction)


async def test_metrics_count_a_buyer_message_and_a_seller_reply(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    base = runner.config.web.public_url
    owner = await new_seller("owner")
    conversation = await joined_conversation(marketplace, owner)
    conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]
    before = await scrape(base)
    for name in (
        "bazaar_pending_messages",
        "bazaar_webhook_outbox_depth",
        "bazaar_mail_queue_depth",
        "bazaar_widget_open_streams",
        "bazaar_translation_calls_total",
        "bazaar_translation_failures_total",
        "bazaar_translation_cache_hits_total",
        "bazaar_appservice_transactions_total",
        "bazaar_appservice_events_total",
    ):
        assert any(key[0] == name for key in before), f"{name} missing from /metrics"

    await marketplace.ok(
        "POST",
        f"/conversations/{conversation_id}/messages",
        {"text": "Is it in stock?", "client_id": "q1"},
    )
    await owner.wait_until(
        lambda: any(m["content"].get("body") == "Is it in stock?" for m in owner.messages(room_id)),
        what="the buyer's message in the seller's room",
    )
    await owner.send_text(room_id, "Yes, two left.")

    async def reply_stored() -> bool:
        return "Yes, two left." in await seller_messages(marketplace, conversation_id)

    await eventually(reply_stored, what="the seller's reply stored for the buyer")

    # The depths are cached for a moment: wait for a scrape that has read them afresh.
    async def settled() -> Samples | None:
        samples = await scrape(base)
        waiting = value(samples, "bazaar_pending_messages") + value(
            samples, "bazaar_webhook_outbox_depth"
        )
        return samples if waiting == 0 else None

    after = await eventually(settled, what="no pending messages or webhooks on /metrics")
    buyer, seller = "buyer_to_seller", "seller_to_buyer"
    assert messages(after, buyer, "sent") - messages(before, buyer, "sent") == 1
    assert messages(after, seller, "sent") - messages(before, seller, "sent") == 1
    assert messages(after, buyer, "failed") == messages(before, buyer, "failed") == 0
    assert messages(after, seller, "failed") == messages(before, seller, "failed") == 0
    assert latency_count(after, buyer) - latency_count(before, buyer) == 1
    assert latency_count(after, seller) - latency_count(before, seller) == 1
    assert value(after, "bazaar_appservice_transactions_total") > value(
        before, "bazaar_appservice_transactions_total"
    )
    assert value(after, "bazaar_appservice_events_total") >= value(
        after, "bazaar_appservice_transactions_total"
    )
    assert value(after, "bazaar_translation_calls_total") == 0, "no provider is configured"
    delivered = {"outcome": "delivered"}
    assert value(after, "bazaar_webhook_deliveries_total", **delivered) > value(
        before, "bazaar_webhook_deliveries_total", **delivered
    ), "the message.created webhooks reached the receiver"


async def test_health_live_and_ready_and_not_ready_without_the_homeserver(
    runner: BridgeRunner,
) -> None:
    bridge = await runner.start()
    base = runner.config.web.public_url
    assert (await get(base + "/health/live"))[0] == 200
    status, _, body = await get(base + "/health/ready")
    assert status == 200, body
    assert '"ok"' in body

    # The same bridge and database, pointed at a homeserver that is not there.
    await runner.stop(bridge)
    config = runner.config
    runner.config = replace(
        config,
        homeserver=replace(config.homeserver, address=f"http://127.0.0.1:{free_port()}"),
    )
    try:
        await runner.start()
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/health/ready") as response:
                assert response.status == 503
                answer = await response.json()
            async with session.get(base + "/health/live") as response:
                assert response.status == 200
                assert await response.json() == {"status": "ok"}
    finally:
        runner.config = config
    assert answer["errcode"] == "BAZAAR_NOT_READY"
    assert "homeserver" in answer["error"]
    assert "database" not in answer["error"], "the database still answers"
