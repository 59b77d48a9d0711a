"""The store's gauges on /metrics: read at scrape time, but not more than once a moment,
so a scrape storm costs the database one COUNT query, not one per scrape."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from bridge.core.metrics import Direction
from bridge.operations.metrics import DEPTHS_FRESH_SECONDS, PrometheusMeter
from bridge.store.depths import QueueDepths


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def gauges(text: str) -> dict[str, float]:
    """The unlabelled samples by name."""
    return {name: value for (name, labels), value in samples(text).items() if not labels}


async def test_a_scrape_storm_reads_the_store_once_per_moment() -> None:
    reads = 0
    now = 100.0

    async def depths() -> QueueDepths:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.01)  # concurrent scrapes arrive while this read is out
        return QueueDepths(reads, 2, 3, 4)

    meter = PrometheusMeter()
    meter.watch(depths, lambda: 7, clock=lambda: now, duties_held=lambda: 5)

    pages = await asyncio.gather(*(meter.exposition() for _ in range(20)))
    assert reads == 1
    seen = gauges(pages[-1].decode())
    assert seen["bazaar_pending_messages"] == 1
    assert seen["bazaar_webhook_outbox_depth"] == 2
    assert seen["bazaar_mail_queue_depth"] == 3
    assert seen["bazaar_appservice_transactions_unprocessed"] == 4
    assert seen["bazaar_widget_open_streams"] == 7
    assert seen["bazaar_duties_held"] == 5

    now += DEPTHS_FRESH_SECONDS + 0.1
    seen = gauges((await meter.exposition()).decode())
    assert reads == 2
    assert seen["bazaar_pending_messages"] == 2


async def test_two_bridges_in_one_process_count_apart() -> None:
    first, second = PrometheusMeter(), PrometheusMeter()
    first.message_sent(Direction.BUYER_TO_SELLER, 0.2)
    first.message_failed(Direction.SELLER_TO_BUYER)
    first.webhook_posted(False)
    first.translation_cached()
    one = samples((await first.exposition()).decode())
    other = samples((await second.exposition()).decode())
    buyer = (("direction", "buyer_to_seller"),)
    seller = (("direction", "seller_to_buyer"),)
    assert one[("bazaar_delivery_latency_seconds_count", buyer)] == 1
    assert one[("bazaar_delivery_latency_seconds_bucket", (*buyer, ("le", "0.25")))] == 1
    assert one[("bazaar_delivery_latency_seconds_bucket", (*buyer, ("le", "0.1")))] == 0
    assert one[("bazaar_delivery_latency_seconds_count", seller)] == 0
    assert other[("bazaar_delivery_latency_seconds_count", buyer)] == 0
    failed = (("direction", "seller_to_buyer"), ("outcome", "failed"))
    sent = (("direction", "buyer_to_seller"), ("outcome", "sent"))
    assert one[("bazaar_messages_total", failed)] == 1
    assert one[("bazaar_messages_total", sent)] == 1
    assert other[("bazaar_messages_total", sent)] == 0
    assert one[("bazaar_webhook_deliveries_total", (("outcome", "failed"),))] == 1
    assert one[("bazaar_webhook_deliveries_total", (("outcome", "delivered"),))] == 0
    assert one[("bazaar_translation_cache_hits_total", ())] == 1
    assert other[("bazaar_translation_cache_hits_total", ())] == 0
