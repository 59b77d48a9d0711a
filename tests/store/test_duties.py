"""Duties shared by replicas through PostgreSQL's advisory locks and LISTEN/NOTIFY
(`store/replicas.py`), two replicas in one process on a real server: one holds each duty,
tellings reach the holder and the others, and a duty goes to the survivor when its holder
stops or loses its connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import pytest_asyncio

from bridge.core.tasks import TaskKeeper
from bridge.store.replicas import ReplicaDuties, asyncpg_dsn
from tests.support.waiting import eventually

DUTIES = ("appservice", "webhooks/shop")
# Split among the replicas: each holds its part.
PARTS = tuple(f"delivery/{n}" for n in range(4))
EVERY = frozenset(DUTIES + PARTS)


@dataclass
class Replica:
    duties: ReplicaDuties
    tasks: TaskKeeper
    gained: list[frozenset[str]] = field(default_factory=list)
    lost: list[frozenset[str]] = field(default_factory=list)
    heard: list[tuple[str, str]] = field(default_factory=list)

    async def stop(self) -> None:
        await self.tasks.close()
        await self.duties.stop()


def replica(url: str) -> Replica:
    tasks = TaskKeeper()
    made = Replica(ReplicaDuties(url, tasks, look_every=0.1, look_again=3600), tasks)

    async def gained(names: frozenset[str]) -> None:
        made.gained.append(names)

    made.duties.want(DUTIES, gained, made.lost.append)
    made.duties.want(PARTS, gained, made.lost.append, shared=True)
    for topic in (*DUTIES, *PARTS, "feed"):
        made.duties.hear(topic, lambda detail, topic=topic: made.heard.append((topic, detail)))
    return made


@pytest_asyncio.fixture(loop_scope="session")
async def pair(postgres_url: str) -> AsyncIterator[tuple[Replica, Replica]]:
    first, second = replica(postgres_url), replica(postgres_url)
    await first.duties.start()
    await second.duties.start()
    yield first, second
    await first.stop()
    await second.stop()


async def test_each_duty_is_held_once_and_tellings_reach_its_holder_and_the_others(
    pair: tuple[Replica, Replica],
) -> None:
    first, second = pair
    # The first took everything alone; with a second, the shared duties are split.
    assert first.gained[0] == frozenset(DUTIES) and first.gained[1] == frozenset(PARTS)
    await eventually(
        lambda: _async(len(second.duties.held) == 2), what="the second taking its part"
    )
    assert second.duties.held | first.duties.held == EVERY
    assert not second.duties.held & first.duties.held
    assert second.duties.held <= set(PARTS)
    assert first.lost == [second.duties.held]
    part = sorted(second.duties.held)[0]

    first.duties.tell_holder(part, "deliver c-1")
    second.duties.tell_holder("appservice", "txn-1")
    second.duties.tell_others("feed", "shop anna")
    first.duties.tell_holder("webhooks/shop")

    await eventually(
        lambda: _async(("feed", "shop anna") in first.heard), what="the feed told to the first"
    )
    await eventually(lambda: _async(("appservice", "txn-1") in first.heard), what="the first told")
    await eventually(lambda: _async((part, "deliver c-1") in second.heard), what="the second told")
    assert ("webhooks/shop", "") in first.heard  # told here, heard here
    # Duties are heard only where held; the teller does not hear its own telling.
    assert second.heard == [(part, "deliver c-1")]
    assert ("feed", "shop anna") not in second.heard


async def test_a_stopped_holders_duties_go_to_the_other(pair: tuple[Replica, Replica]) -> None:
    first, second = pair
    await eventually(lambda: _async(len(second.duties.held) == 2), what="the parts split")
    await first.stop()
    await eventually(lambda: _async(second.duties.held == EVERY), what="the second holds all")
    # Whoever takes a duty up is told nothing in particular: it looks in the store itself.
    assert second.heard == []


async def test_a_holder_whose_connection_is_cut_lets_go_and_takes_up_again(
    pair: tuple[Replica, Replica], postgres_url: str
) -> None:
    first, second = pair
    await eventually(lambda: _async(len(second.duties.held) == 2), what="the parts split")
    connection = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name LIKE 'bazaar duties %' AND pid = $1",
            first.duties.server_pid,
        )
    finally:
        await connection.close()
    await eventually(lambda: _async(frozenset(DUTIES) in first.lost), what="the first letting go")
    # Between them they hold everything again, each duty once.
    await eventually(
        lambda: _async(first.duties.held | second.duties.held == EVERY),
        what="every duty held again",
    )
    assert not first.duties.held & second.duties.held
    # The cut one, connected again, heard "" for every topic: it may have missed some.
    await eventually(lambda: _async(("feed", "") in first.heard), what="the look again")


async def _async(value: bool) -> bool:
    return value
