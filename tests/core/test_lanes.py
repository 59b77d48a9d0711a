"""Live requests go to the homeserver at once; bulk ones two at a time, after live ones."""

from __future__ import annotations

import asyncio

from bridge.core.lanes import Lanes, bulk_work, is_bulk


async def test_bulk_waits_for_live_and_for_a_slot() -> None:
    lanes = Lanes(bulk_slots=2, live_first=5.0)
    order: list[str] = []
    live_may_end = asyncio.Event()

    async def live(name: str) -> None:
        async with lanes.turn():
            order.append(f"{name} starts")
            await live_may_end.wait()
        order.append(f"{name} ends")

    async def bulk(name: str) -> None:
        with bulk_work():
            async with lanes.turn():
                order.append(f"{name} starts")
                await asyncio.sleep(0)

    live_task = asyncio.create_task(live("live"))
    await asyncio.sleep(0)
    bulk_tasks = [asyncio.create_task(bulk(f"bulk-{n}")) for n in range(3)]
    for _ in range(5):
        await asyncio.sleep(0)
    # While a live request is in flight, no bulk request has gone.
    assert order == ["live starts"]
    second_live = asyncio.create_task(live("live-2"))
    await asyncio.sleep(0)
    assert order == ["live starts", "live-2 starts"]  # live never waits
    live_may_end.set()
    await asyncio.gather(live_task, second_live, *bulk_tasks)
    assert order[:4] == ["live starts", "live-2 starts", "live ends", "live-2 ends"]
    assert sorted(order[4:]) == ["bulk-0 starts", "bulk-1 starts", "bulk-2 starts"]


async def test_bulk_is_not_starved_by_steady_live_traffic() -> None:
    lanes = Lanes(bulk_slots=1, live_first=0.05)
    stop = asyncio.Event()

    async def steady_live() -> None:
        while not stop.is_set():
            async with lanes.turn():
                await asyncio.sleep(0.01)

    traffic = [asyncio.create_task(steady_live()) for _ in range(3)]
    await asyncio.sleep(0.02)
    with bulk_work():
        async with asyncio.timeout(5):
            async with lanes.turn():
                went = lanes.live_in_flight > 0  # it went beside live traffic, not after
    stop.set()
    await asyncio.gather(*traffic)
    assert went


def test_the_mark_stays_inside_bulk_work() -> None:
    assert not is_bulk()
    with bulk_work():
        assert is_bulk()
    assert not is_bulk()
