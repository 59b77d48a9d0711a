"""Per-buyer rate limits on writes: a token bucket per buyer and kind of write."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bridge.errors import RateLimited


@dataclass(frozen=True)
class Rate:
    burst: int
    per_second: float


DEFAULT_RATES = {
    "message": Rate(burst=20, per_second=1.0),
    "conversation": Rate(burst=10, per_second=0.2),
    "typing": Rate(burst=30, per_second=2.0),
    "read": Rate(burst=60, per_second=5.0),
}


class RateLimiter:
    def __init__(
        self,
        rates: dict[str, Rate] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self._rates = rates or DEFAULT_RATES
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}

    def take(self, who: str, kind: str) -> None:
        """Spend one write of `kind` for `who`, or raise RateLimited with the wait."""
        rate = self._rates[kind]
        now = self._clock()
        tokens, then = self._buckets.get((who, kind), (float(rate.burst), now))
        tokens = min(float(rate.burst), tokens + (now - then) * rate.per_second)
        if tokens < 1:
            wait_ms = int((1 - tokens) / rate.per_second * 1000) + 1
            raise RateLimited(f"Too many {kind} writes; try again in {wait_ms} ms", wait_ms)
        if len(self._buckets) >= self._max_keys:
            self._buckets.clear()  # a crude bound on memory; a full bucket is the default
        self._buckets[(who, kind)] = (tokens - 1, now)
