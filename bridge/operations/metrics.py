"""The bridge's Prometheus metrics: the `Meter` core reports to, and the gauges read from
the store when scraped.

Each bridge has a registry of its own (not prometheus_client's global one), so several
bridges in one process, as in the tests, count apart. Labelled children are bound once
here, so a count costs a dictionary lookup and an increment, nothing allocated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from bridge.core.metrics import Direction
from bridge.store.depths import QueueDepths

logger = logging.getLogger(__name__)

# A message normally crosses in well under a second; the long buckets show outages.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# A scrape storm reads the store at most this often.
DEPTHS_FRESH_SECONDS = 1.5


class PrometheusMeter:
    """The `Meter` of a running bridge, and the text `/metrics` serves."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        messages = Counter(
            "bazaar_messages",
            "Messages carried, by direction and outcome",
            ["direction", "outcome"],
            registry=registry,
        )
        self._sent = {d: messages.labels(direction=d.value, outcome="sent") for d in Direction}
        self._failed = {d: messages.labels(direction=d.value, outcome="failed") for d in Direction}
        latency = Histogram(
            "bazaar_delivery_latency_seconds",
            "From a buyer message stored to in the room, or a member reply received to "
            "stored for the buyer",
            ["direction"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._latency = {d: latency.labels(direction=d.value) for d in Direction}
        self._transactions = Counter(
            "bazaar_appservice_transactions",
            "Appservice transactions the homeserver pushed (repeats included)",
            registry=registry,
        )
        self._events = Counter(
            "bazaar_appservice_events",
            "Events in the appservice transactions received",
            registry=registry,
        )
        self._recovered = Counter(
            "bazaar_appservice_recovered_events",
            "Events the homeserver never pushed, found in the rooms' timelines after an outage",
            registry=registry,
        )
        self._translation_calls = Counter(
            "bazaar_translation_calls", "Calls to the translation provider", registry=registry
        )
        self._translation_failures = Counter(
            "bazaar_translation_failures",
            "Provider calls that failed (the message went out untranslated)",
            registry=registry,
        )
        self._translation_cache_hits = Counter(
            "bazaar_translation_cache_hits",
            "Translations served from the cache",
            registry=registry,
        )
        webhooks = Counter(
            "bazaar_webhook_deliveries",
            "Webhook POSTs, by outcome (failed ones are retried)",
            ["outcome"],
            registry=registry,
        )
        self._webhooks = {True: webhooks.labels("delivered"), False: webhooks.labels("failed")}
        self._gauges: StoreGauges | None = None

    # The Meter protocol (bridge/core/metrics.py)

    def message_sent(self, direction: Direction, seconds: float) -> None:
        self._sent[direction].inc()
        self._latency[direction].observe(seconds)

    def message_failed(self, direction: Direction) -> None:
        self._failed[direction].inc()

    def transaction_received(self, events: int) -> None:
        self._transactions.inc()
        self._events.inc(events)

    def events_recovered(self, events: int) -> None:
        self._recovered.inc(events)

    def translation_asked(self) -> None:
        self._translation_calls.inc()

    def translation_failed(self) -> None:
        self._translation_failures.inc()

    def translation_cached(self) -> None:
        self._translation_cache_hits.inc()

    def webhook_posted(self, delivered: bool) -> None:
        self._webhooks[delivered].inc()

    # Scraping

    def watch(
        self,
        depths: Callable[[], Awaitable[QueueDepths]],
        open_streams: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
        duties_held: Callable[[], int] = lambda: 0,
    ) -> None:
        """Serve the store's queue depths, the open widget streams and the duties held here
        as gauges too."""
        self._gauges = StoreGauges(depths, open_streams, clock, duties_held)
        self.registry.register(self._gauges)

    async def exposition(self) -> bytes:
        """The metrics in Prometheus text format, the store's depths at most a moment old."""
        if self._gauges is not None:
            await self._gauges.refresh()
        return generate_latest(self.registry)


class StoreGauges(Collector):
    """Gauges read at scrape time: COUNT queries, kept for `DEPTHS_FRESH_SECONDS`.

    prometheus_client collects synchronously, so the scrape handler refreshes the counts
    first (`refresh`) and `collect` reads what it found."""

    def __init__(
        self,
        depths: Callable[[], Awaitable[QueueDepths]],
        open_streams: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
        duties_held: Callable[[], int] = lambda: 0,
    ) -> None:
        self._read = depths
        self._open_streams = open_streams
        self._duties_held = duties_held
        self._clock = clock
        self._depths: QueueDepths | None = None
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:  # concurrent scrapes share one read
            if self._clock() - self._read_at < DEPTHS_FRESH_SECONDS:
                return
            try:
                self._depths = await self._read()
            except Exception as error:
                # The gauges go missing rather than lie; /health/ready names the database.
                logger.warning("Could not read the queue depths for /metrics: %r", error)
                self._depths = None
            self._read_at = self._clock()

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "bazaar_widget_open_streams",
            "Buyers' widget streams (WebSockets) open on this process",
            value=self._open_streams(),
        )
        yield GaugeMetricFamily(
            "bazaar_duties_held",
            "Duties (work done by one replica at a time) this process holds",
            value=self._duties_held(),
        )
        depths = self._depths
        if depths is None:
            return
        for name, documentation, value in (
            (
                "bazaar_pending_messages",
                "Buyer messages not yet in their room",
                depths.pending_messages,
            ),
            ("bazaar_webhook_outbox_depth", "Webhooks not yet delivered", depths.webhook_outbox),
            ("bazaar_mail_queue_depth", "Mail neither sent nor refused", depths.mail_queue),
            (
                "bazaar_appservice_transactions_unprocessed",
                "Appservice transactions stored but not yet applied",
                depths.unprocessed_transactions,
            ),
        ):
            yield GaugeMetricFamily(name, documentation, value=value)
