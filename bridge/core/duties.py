"""Duties: work that must happen once, whichever replica of the bridge does it.

A duty is named work held by one replica at a time: one shard of the conversations'
deliveries, one site's webhooks, the archive clock, the appservice transactions. A replica
says which duties it wants; it is told when it gains some (and must then pick up what the
store says is owed: the last holder may have died mid-way) and when it loses them. Anyone
may tell a duty's holder, here or on another replica, that there is new work; a topic that
is nobody's duty (a buyer's feed, a changed seller) can be told to every other replica.

`SoleDuties` is the one-process kind: every duty is held from the start, and telling a
holder is a call. `store/replicas.py` holds them with PostgreSQL's advisory locks and tells
through LISTEN/NOTIFY.

A told detail may be lost (a holder dying as it is told, a connection dropped): whoever
gains a duty, or hears an empty detail, looks in the store for everything owed.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Protocol

from bridge.core.tasks import TaskKeeper

logger = logging.getLogger(__name__)

Gained = Callable[[frozenset[str]], Awaitable[None]]
Lost = Callable[[frozenset[str]], None]
# Called with what a teller said; with "" when something may have been missed.
Heard = Callable[[str], None]

# Conversations' deliveries are held in this many shards, so replicas can share them.
DELIVERY_SHARDS = 32


def delivery_duty(conversation_id: str) -> str:
    """The duty that delivers a conversation's messages."""
    return f"delivery/{zlib.crc32(conversation_id.encode()) % DELIVERY_SHARDS}"


DELIVERY_DUTIES = tuple(f"delivery/{shard}" for shard in range(DELIVERY_SHARDS))


class Duties(Protocol):
    @property
    def alone(self) -> bool:
        """Whether this is the only replica there can be (then every duty is held here)."""
        ...

    def want(
        self,
        names: Iterable[str],
        gained: Gained,
        lost: Lost | None = None,
        *,
        shared: bool = False,
    ) -> None:
        """Hold these duties whenever they are free; `gained` runs with the ones taken in
        one go, `lost` with the ones let go (a dropped connection to the store). `shared`
        duties are split among the replicas: each holds its part of them."""
        ...

    def holds(self, name: str) -> bool: ...

    def hear(self, topic: str, heard: Heard) -> None:
        """What to do when told of `topic`: for a duty, run only where it is held."""
        ...

    def tell_holder(self, duty: str, detail: str = "") -> None:
        """Tell the duty's holder, this replica or another, of `detail`."""
        ...

    def tell_others(self, topic: str, detail: str = "") -> None:
        """Tell every other replica of `detail`; this one already knows."""
        ...


class SoleDuties:
    """One process, every duty, from the start: what the bridge runs on SQLite. `start`
    runs what each duty's taking up owes (the work a previous run left)."""

    def __init__(self) -> None:
        self._wanted: list[tuple[frozenset[str], Gained]] = []
        self._hearers: dict[str, Heard] = {}

    @property
    def alone(self) -> bool:
        return True

    def want(
        self,
        names: Iterable[str],
        gained: Gained,
        lost: Lost | None = None,
        *,
        shared: bool = False,
    ) -> None:
        self._wanted.append((frozenset(names), gained))

    async def start(self) -> None:
        for names, gained in self._wanted:
            await gained(names)

    async def stop(self) -> None:
        pass

    def holds(self, name: str) -> bool:
        return True

    @property
    def held(self) -> frozenset[str]:
        """Every duty wanted: all of them are this process's."""
        return frozenset().union(*(names for names, _ in self._wanted))

    def hear(self, topic: str, heard: Heard) -> None:
        self._hearers[topic] = heard

    def tell_holder(self, duty: str, detail: str = "") -> None:
        heard = self._hearers.get(duty)
        if heard is not None:
            heard(detail)

    def tell_others(self, topic: str, detail: str = "") -> None:
        pass


def while_held(
    duties: Duties,
    tasks: TaskKeeper,
    name: str,
    work: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    """Run `work` (a loop) while this replica holds the duty `name`: started when gained,
    cancelled when lost."""
    running: list[asyncio.Task[Any]] = []

    async def gained(_: frozenset[str]) -> None:
        if not running or running[0].done():
            running[:] = [tasks.spawn(work(), name=name)]

    def lost(_: frozenset[str]) -> None:
        if running:
            running.pop().cancel()
            logger.info("Duty %s went to another replica", name)

    duties.want([name], gained, lost)
