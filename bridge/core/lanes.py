"""Live work first: what a person waits for now (a buyer's message, a seller's reply, a
notice) goes to the homeserver ahead of bulk work (a role change over every room of a
seller, a broadcast, a backlog after an outage), which shares what is left.

Code doing bulk work says so with `bulk_work()`; the gateway (`matrix/gateway.py`) asks
`Lanes` for a turn on each request. A context variable carries the mark, so the bulk
code's own calls, however deep, are bulk, and nothing else is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar

# Bulk requests in flight at once: enough to keep a role change moving (measured with
# bench/roles.py: 2 slots made it 4.5 × the raw invites, 4 slots 3.0 ×), few enough that a
# live request never waits behind more than this many.
BULK_SLOTS = 4
# A bulk request waits this long at most for live traffic to pause, so a steady stream of
# buyer messages slows bulk work down without stopping it.
LIVE_FIRST_SECONDS = 0.25

_bulk: ContextVar[bool] = ContextVar("bazaar_bulk_work", default=False)


@contextlib.contextmanager
def bulk_work() -> Iterator[None]:
    """Marks the work inside as bulk."""
    token = _bulk.set(True)
    try:
        yield
    finally:
        _bulk.reset(token)


def is_bulk() -> bool:
    return _bulk.get()


class Lanes:
    def __init__(self, bulk_slots: int = BULK_SLOTS, live_first: float = LIVE_FIRST_SECONDS):
        self._slots = asyncio.Semaphore(bulk_slots)
        self._live_first = live_first
        self._live = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """A turn for one request: at once for live work; for bulk work a free slot, once
        live requests have paused (or `live_first` has passed)."""
        if not _bulk.get():
            self._live += 1
            self._quiet.clear()
            try:
                yield
            finally:
                self._live -= 1
                if self._live == 0:
                    self._quiet.set()
            return
        async with self._slots:
            if not self._quiet.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._quiet.wait(), self._live_first)
            yield

    @property
    def live_in_flight(self) -> int:
        return self._live
