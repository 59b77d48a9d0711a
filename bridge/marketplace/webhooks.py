"""Delivers the webhook outbox: signed, in order per site, retried with backoff until a 2xx."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp

from bridge.core.duties import Duties
from bridge.core.ids import SiteID
from bridge.core.metrics import NO_METER, Meter
from bridge.core.storage import OutgoingWebhook, WebhookOutbox
from bridge.core.tasks import TaskKeeper

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Bazaar-Signature"
BATCH = 50
TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)


def webhook_duty(site: SiteID) -> str:
    """The duty of posting a site's webhooks, held by one replica so they stay in order."""
    return f"webhooks/{site}"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    secret: str


@dataclass(frozen=True)
class RetryPolicy:
    first: float = 1.0
    longest: float = 600.0

    def delay(self, attempts: int) -> float:
        return float(min(self.first * 2 ** min(attempts, 30), self.longest))


class WebhookDispatcher:
    def __init__(
        self,
        outbox: WebhookOutbox,
        targets: Mapping[SiteID, WebhookTarget],
        session: aiohttp.ClientSession,
        tasks: TaskKeeper,
        duties: Duties,
        retry: RetryPolicy = RetryPolicy(),
        meter: Meter = NO_METER,
    ) -> None:
        self._outbox = outbox
        # Each site's webhooks are one replica's duty (`core/duties.py`); the holder is
        # told of new ones, whichever replica committed them.
        self._duties = duties
        self._meter = meter
        self._targets = targets
        self._session = session
        self._tasks = tasks
        self._retry = retry
        self._wakeups = {site: asyncio.Event() for site in targets}
        self._runs: dict[SiteID, asyncio.Task[None]] = {}
        for site in targets:
            self._duties.hear(webhook_duty(site), self._heard(site))
            self._duties.want([webhook_duty(site)], self._gained(site), self._lost(site))

    def _heard(self, site: SiteID) -> Callable[[str], None]:
        def heard(_: str) -> None:
            self._wakeups[site].set()

        return heard

    def _gained(self, site: SiteID) -> Callable[[frozenset[str]], Awaitable[None]]:
        async def gained(_: frozenset[str]) -> None:
            run = self._runs.get(site)
            if run is None or run.done():
                self._runs[site] = self._tasks.spawn(self._run(site), name=f"webhooks:{site}")

        return gained

    def _lost(self, site: SiteID) -> Callable[[frozenset[str]], None]:
        def lost(_: frozenset[str]) -> None:
            run = self._runs.pop(site, None)
            if run is not None:
                run.cancel()

        return lost

    def wake(self, site: SiteID) -> None:
        """Webhooks for the site were committed to the outbox."""
        if site in self._wakeups:
            self._duties.tell_holder(webhook_duty(site))

    async def _run(self, site: SiteID) -> None:
        wakeup = self._wakeups[site]
        while True:
            wakeup.clear()
            try:
                await self._deliver_due(site)
                next_at = await self._outbox.next_webhook_attempt(site)
            except Exception:
                logger.exception("Webhook delivery for %s failed; retrying", site)
                next_at = datetime.now(UTC) + timedelta(seconds=self._retry.first)
            wait = None if next_at is None else (next_at - datetime.now(UTC)).total_seconds()
            if wait is not None and wait <= 0:
                continue
            try:
                async with asyncio.timeout(wait):
                    await wakeup.wait()
            except TimeoutError:
                pass

    async def _deliver_due(self, site: SiteID) -> None:
        target = self._targets[site]
        while True:
            due = await self._outbox.due_webhooks(site, datetime.now(UTC), BATCH)
            for webhook in due:
                if not await self._post(target, webhook):
                    return
            if len(due) < BATCH:
                return

    async def _post(self, target: WebhookTarget, webhook: OutgoingWebhook) -> bool:
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(target.secret, webhook.body),
            "User-Agent": "Bazaar-Bridge",
        }
        error: str
        try:
            async with self._session.post(
                target.url, data=webhook.body, headers=headers, timeout=TIMEOUT
            ) as response:
                if 200 <= response.status < 300:
                    await self._outbox.mark_webhook_delivered(
                        webhook.delivery_id, datetime.now(UTC)
                    )
                    self._meter.webhook_posted(True)
                    return True
                error = f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as failure:
            error = repr(failure)
        self._meter.webhook_posted(False)
        delay = self._retry.delay(webhook.attempts)
        logger.warning(
            "Webhook %s to %s failed (%s); retry in %.0fs",
            webhook.delivery_id,
            target.url,
            error,
            delay,
        )
        await self._outbox.defer_webhook(
            webhook.delivery_id, datetime.now(UTC) + timedelta(seconds=delay), error
        )
        return False
