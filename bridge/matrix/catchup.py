"""Events the homeserver never pushed, found in the rooms once it is back.

A Synapse going down can lose events it had taken off its appservice stream and not yet
sent (element-hq/synapse#11637): a seller's reply is in the room, and no transaction ever
brings it. So the bridge watches whether the homeserver is up: a look every few seconds,
and any request of its own that finds it unreachable. Once it answers again, and when the
bridge starts, the catch-up reads each of the bridge's rooms back to a little before the
homeserver was last seen up, and hands the transaction processor what came in no stored
transaction; the processor applies those behind what is queued, once. Since a sweep reads
only recent transactions, the catch-up also forgets those applied more than a day ago.

(A sync token would say what changed in every room at once, but Synapse refuses `/sync`
to an appservice's own user, so the rooms are read one by one, as bulk work.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.core.ids import RoomID
from bridge.core.lanes import bulk_work
from bridge.core.ports import HomeserverUnavailable, MatrixRejected
from bridge.core.storage import TransactionLog
from bridge.matrix.gateway import MatrixGateway
from bridge.matrix.transactions import TransactionProcessor

logger = logging.getLogger(__name__)

# How often the catch-up looks whether the homeserver is up (seconds).
LOOK_EVERY = 5.0
# How often it keeps, for the next start, when the homeserver was last seen up (seconds).
KEEP_EVERY = 30.0
# Rooms are read back to this long before the homeserver was last seen up: the events a
# homeserver loses are those of its last moments, and its clock may differ from ours.
LEAD = timedelta(seconds=60)
# Transactions stored since this long before that count as seen.
SEEN_MARGIN = timedelta(minutes=5)
# Applied transactions are kept this long after the homeserver was last seen up (the
# sweeps read the recent ones), and pruned this often (seconds).
TRANSACTIONS_KEPT = timedelta(days=1)
PRUNE_EVERY = 3600.0
# Pages read back per room at most, and rooms read at once.
PAGES_PER_ROOM = 10
ROOMS_AT_ONCE = 4


def _now() -> datetime:
    return datetime.now(UTC)


class Catchup:
    def __init__(
        self,
        gateway: MatrixGateway,
        transactions: TransactionProcessor,
        log: TransactionLog,
        *,
        look_every: float = LOOK_EVERY,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._gateway = gateway
        self._transactions = transactions
        self._log = log
        self._look_every = look_every
        self._clock = clock
        # Set once the homeserver answered and the start's sweep is done: for tests.
        self.watching = asyncio.Event()

    async def run(self) -> None:
        """Watch the homeserver for as long as the bridge runs: one sweep at the start,
        back to the last run's last sight of it, then one after each time it was away."""
        last_up = await self._log.homeserver_last_up()
        pending = last_up - LEAD if last_up is not None else None
        away_since: datetime | None = None
        kept = pruned = float("-inf")
        while True:
            try:
                await self._gateway.reachable()
            except HomeserverUnavailable as error:
                if away_since is None:
                    away_since = self._clock()
                    logger.warning("The homeserver is away (%s); the bridge will catch up", error)
                await asyncio.sleep(self._look_every)
                continue
            away = _earlier(away_since, self._gateway.take_unreachable_since())
            away_since = None
            if away is not None:
                pending = _earlier(pending, away - LEAD)
            try:
                if pending is not None:
                    await self.sweep(pending)
                    pending = None
                if time.monotonic() - kept >= KEEP_EVERY:
                    await self._log.keep_homeserver_up(self._clock())
                    kept = time.monotonic()
                if time.monotonic() - pruned >= PRUNE_EVERY:
                    # Up now, no sweep waiting: older transactions are read by none.
                    forgotten = await self._log.prune_transactions(
                        self._clock() - TRANSACTIONS_KEPT
                    )
                    logger.info("Forgot %d applied appservice transactions", forgotten)
                    pruned = time.monotonic()
                self.watching.set()
            except Exception as error:
                # The homeserver or the store away in the middle: the sweep is done again
                # once both are back, and the next start does it if this run can't.
                logger.warning("The catch-up waits for the homeserver and the store: %r", error)
                if pending is not None:
                    await _quietly(self._log.keep_homeserver_up(pending + LEAD))
            await asyncio.sleep(self._look_every)

    async def sweep(self, since: datetime) -> int:
        """Hand the processor every event of the bridge's rooms since `since`; returns how
        many came in no transaction."""
        rooms = await self._log.bridge_rooms()
        gate = asyncio.Semaphore(ROOMS_AT_ONCE)

        async def read(room_id: RoomID) -> list[dict[str, Any]]:
            async with gate:
                return await self._room_since(room_id, since)

        with bulk_work():
            found = await asyncio.gather(*(read(room_id) for room_id in rooms))
        events = [event for room in found for event in room]
        recovered = await self._transactions.recover(events, seen_since=since - SEEN_MARGIN)
        logger.log(
            logging.WARNING if recovered else logging.INFO,
            "Catch-up: %d events the homeserver never pushed (%d rooms read back to %s)",
            recovered,
            len(rooms),
            since.isoformat(timespec="seconds"),
        )
        return recovered

    async def _room_since(self, room_id: RoomID, since: datetime) -> list[dict[str, Any]]:
        """The room's events since `since`, oldest first; up to PAGES_PER_ROOM pages."""
        newest_first: list[dict[str, Any]] = []
        before: str | None = None
        for _ in range(PAGES_PER_ROOM):
            try:
                page, before = await self._gateway.timeline_before(room_id, before)
            except MatrixRejected as error:
                # A room the bot was made to leave: nothing in it reaches the bridge anyway.
                logger.info("Catch-up skips %s: %s", room_id, error)
                return []
            recent = [event for event in page if _created(event) >= since]
            newest_first.extend(recent)
            if before is None or len(recent) < len(page):
                break
        else:
            logger.warning("Catch-up read %d pages back in %s, no further", PAGES_PER_ROOM, room_id)
        return newest_first[::-1]


def _earlier(one: datetime | None, other: datetime | None) -> datetime | None:
    if one is None or other is None:
        return one or other
    return min(one, other)


def _created(event: dict[str, Any]) -> datetime:
    ts = event.get("origin_server_ts")
    if isinstance(ts, int) and not isinstance(ts, bool):
        return datetime.fromtimestamp(ts / 1000, UTC)
    return datetime.max.replace(tzinfo=UTC)


async def _quietly(work: Awaitable[None]) -> None:
    try:
        await work
    except Exception as error:
        logger.warning("The catch-up could not keep its place: %r", error)
