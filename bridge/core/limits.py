"""Per-buyer limits: a token bucket per buyer and kind of request (writes, downloads), and
a cap on the uploads one buyer has in flight at once."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bridge.errors import RateLimited, TooManyUploads


@dataclass(frozen=True)
class Rate:
    burst: int
    per_second: float

    @classmethod
    def per_minute(cls, count: int) -> Rate:
        """`count` at once, then `count` a minute."""
        return cls(burst=count, per_second=count / 60)


DEFAULT_RATES = {
    "message": Rate(burst=20, per_second=1.0),
    "conversation": Rate(burst=10, per_second=0.2),
    "typing": Rate(burst=30, per_second=2.0),
    "read": Rate(burst=60, per_second=5.0),
    # Feedback forms to sellers whose chat is off: a few at once, then one a minute.
    "feedback": Rate(burst=5, per_second=1 / 60),
    # Attachment downloads; `web.downloads_per_minute` sets it for a running bridge.
    "download": Rate.per_minute(120),
}


class RateLimiter:
    def __init__(
        self,
        rates: dict[str, Rate] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        # A kind the caller leaves out keeps its default rate.
        self._rates = {**DEFAULT_RATES, **(rates or {})}
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}

    def take(self, who: str, kind: str) -> None:
        """Spend one request of `kind` for `who`, or raise RateLimited with the wait."""
        rate = self._rates[kind]
        now = self._clock()
        tokens, then = self._buckets.get((who, kind), (float(rate.burst), now))
        tokens = min(float(rate.burst), tokens + (now - then) * rate.per_second)
        if tokens < 1:
            wait_ms = int((1 - tokens) / rate.per_second * 1000) + 1
            raise RateLimited(f"Too many {kind} requests; try again in {wait_ms} ms", wait_ms)
        if len(self._buckets) >= self._max_keys:
            self._buckets.clear()  # a crude bound on memory; a full bucket is the default
        self._buckets[(who, kind)] = (tokens - 1, now)


class UploadSlots:
    """At most `most` uploads in flight per buyer: a buyer's uploads are held in memory
    while they arrive, so many at once would be many files' worth of memory."""

    def __init__(self, most: int) -> None:
        self._most = most
        self._busy: Counter[str] = Counter()

    @contextlib.contextmanager
    def hold(self, who: str) -> Iterator[None]:
        """One slot for the length of the block, or TooManyUploads when none is free."""
        if self._busy[who] >= self._most:
            files = "a file" if self._most == 1 else f"{self._most} files"
            raise TooManyUploads(
                f"You are already sending {files}; send this one when an upload has finished"
            )
        self._busy[who] += 1
        try:
            yield
        finally:
            self._busy[who] -= 1
            if not self._busy[who]:
                del self._busy[who]
