"""The feed hub without I/O: one store read per wake-up for all of a buyer's streams, every
frame to every stream once and in order, the oldest stream closed past the cap.

The store here is an in-memory list that counts its reads: the count is the property under
test (one read per wake-up, however many streams the buyer has open)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from bridge.core.ids import BuyerID, ConversationID, SiteID
from bridge.core.storage import StoredFrame
from bridge.core.tasks import TaskKeeper
from bridge.widget import stream
from bridge.widget.stream import BATCH, MAX_WAITING, FeedClosed, FeedHub, OpenStream

SITE = SiteID("shop")
ANNA = BuyerID("anna")
WITHIN = 5.0


class Feed:
    """Anna's stored frames, and how often they were read."""

    def __init__(self) -> None:
        self.frames: list[StoredFrame] = []
        self.reads = 0
        self.broken = False

    def add(self, count: int) -> list[int]:
        start = len(self.frames)
        for seq in range(start + 1, start + count + 1):
            self.frames.append(
                StoredFrame(seq, "message.created", ConversationID("c1"), {"n": seq})
            )
        return list(range(start + 1, start + count + 1))

    async def frames_since(
        self, site: SiteID, buyer_id: BuyerID, since: int, limit: int
    ) -> list[StoredFrame]:
        self.reads += 1
        await asyncio.sleep(0)  # a real store answers later, letting others run meanwhile
        if self.broken:
            raise OSError("the database went away")
        return [frame for frame in self.frames if frame.seq > since][:limit]

    async def latest_frame(self, site: SiteID, buyer_id: BuyerID) -> int:
        await asyncio.sleep(0)
        return len(self.frames)


@pytest_asyncio.fixture
async def tasks() -> AsyncIterator[TaskKeeper]:
    keeper = TaskKeeper()
    yield keeper
    await keeper.close()


async def seqs_until(stream: OpenStream, last: int) -> list[int]:
    """The seqs the stream gives, up to and including `last`."""
    got: list[int] = []
    async with asyncio.timeout(WITHIN):
        while not got or got[-1] < last:
            got += [frame.seq for frame in await stream.next_frames()]
    return got


async def test_one_read_per_wake_up_serves_every_stream_of_the_buyer(tasks: TaskKeeper) -> None:
    feed = Feed()
    hub = FeedHub(feed, tasks, max_streams=5)
    async with contextlib.AsyncExitStack() as streams:
        opened = [await streams.enter_async_context(hub.open(SITE, ANNA, 0)) for _ in range(5)]
        first = feed.add(1)
        hub.notify(SITE, ANNA)
        for stream in opened:
            assert await seqs_until(stream, first[-1]) == first
        for _ in range(3):
            before = feed.reads
            added = feed.add(3)
            hub.notify(SITE, ANNA)
            for stream in opened:
                assert await seqs_until(stream, added[-1]) == added
            assert feed.reads - before == 1
        assert hub.open_streams == 5
    assert hub.open_streams == 0


async def test_a_new_stream_replays_its_own_backlog_then_joins_without_gap_or_repeat(
    tasks: TaskKeeper,
) -> None:
    feed = Feed()
    hub = FeedHub(feed, tasks, max_streams=5)
    async with hub.open(SITE, ANNA, 0) as live:
        feed.add(5)
        hub.notify(SITE, ANNA)
        assert await seqs_until(live, 5) == [1, 2, 3, 4, 5]
        async with (
            hub.open(SITE, ANNA, 0) as from_start,
            hub.open(SITE, ANNA, 3) as from_three,
            hub.open(SITE, ANNA, 9) as ahead,
        ):
            # Committed after they joined but before they read their backlog: the backlog
            # read sees these frames too, and must leave them to the shared reader.
            feed.add(3)
            hub.notify(SITE, ANNA)
            assert await seqs_until(from_start, 8) == list(range(1, 9))
            assert await seqs_until(from_three, 8) == [4, 5, 6, 7, 8]
            assert await seqs_until(live, 8) == [6, 7, 8]
            feed.add(4)
            hub.notify(SITE, ANNA)
            # A client that claims to have seen up to 9 gets what follows 9.
            assert await seqs_until(ahead, 12) == [10, 11, 12]
            for stream in (from_start, from_three, live):
                assert await seqs_until(stream, 12) == [9, 10, 11, 12]


async def test_a_stream_that_falls_behind_catches_up_from_the_store(tasks: TaskKeeper) -> None:
    feed = Feed()
    hub = FeedHub(feed, tasks, max_streams=5)
    async with hub.open(SITE, ANNA, 0) as slow, hub.open(SITE, ANNA, 0) as quick:
        total = 0
        # Far more than a stream may have waiting, while the slow one reads nothing.
        while total < 3 * MAX_WAITING:
            total = feed.add(BATCH // 2)[-1]
            hub.notify(SITE, ANNA)
            assert (await seqs_until(quick, total))[-1] == total
        assert await seqs_until(slow, total) == list(range(1, total + 1))
        feed.add(2)
        hub.notify(SITE, ANNA)
        assert await seqs_until(slow, total + 2) == [total + 1, total + 2]


async def test_past_the_cap_the_oldest_stream_is_replaced(tasks: TaskKeeper) -> None:
    feed = Feed()
    hub = FeedHub(feed, tasks, max_streams=2)
    async with (
        hub.open(SITE, ANNA, 0) as oldest,
        hub.open(SITE, ANNA, 0) as middle,
        hub.open(SITE, ANNA, 0) as newest,
    ):
        with pytest.raises(FeedClosed) as closed:
            await seqs_until(oldest, 1)
        assert (closed.value.code, closed.value.reason) == (4000, "replaced")
        assert hub.open_streams == 2
        feed.add(2)
        hub.notify(SITE, ANNA)
        assert await seqs_until(middle, 2) == [1, 2]
        assert await seqs_until(newest, 2) == [1, 2]
        # Another buyer's streams are counted on their own: nothing is replaced.
        async with hub.open(SITE, BuyerID("boris"), 0):
            assert hub.open_streams == 3
            feed.add(1)
            hub.notify(SITE, ANNA)
            assert await seqs_until(middle, 3) == [3]
            assert await seqs_until(newest, 3) == [3]


async def test_a_feed_that_cannot_be_read_closes_its_streams(tasks: TaskKeeper) -> None:
    feed = Feed()
    hub = FeedHub(feed, tasks, max_streams=5)
    async with hub.open(SITE, ANNA, 0) as first, hub.open(SITE, ANNA, 0) as second:
        feed.broken = True
        feed.add(1)
        hub.notify(SITE, ANNA)
        for stream in (first, second):
            with pytest.raises(FeedClosed) as closed:
                await seqs_until(stream, 1)
            assert closed.value.code == 1011
    # A stream opened afterwards gets a new reader once the store answers again.
    feed.broken = False
    async with hub.open(SITE, ANNA, 0) as again:
        assert await seqs_until(again, 1) == [1]


class Wire:
    """Replicas' tellings in memory: what one end tells the others, every other end hears."""

    def __init__(self) -> None:
        self.ends: list[WireEnd] = []

    def end(self) -> WireEnd:
        made = WireEnd(self)
        self.ends.append(made)
        return made


class WireEnd:
    alone = False

    def __init__(self, wire: Wire) -> None:
        self._wire = wire
        self.hearers: dict[str, Callable[[str], None]] = {}

    def want(self, *_: object, **__: object) -> None:
        pass

    def holds(self, name: str) -> bool:
        return True

    def hear(self, topic: str, heard: Callable[[str], None]) -> None:
        self.hearers[topic] = heard

    def tell_holder(self, duty: str, detail: str = "") -> None:
        pass

    def tell_others(self, topic: str, detail: str = "") -> None:
        for end in self._wire.ends:
            if end is not self and topic in end.hearers:
                end.hearers[topic](detail)


async def test_a_stream_open_on_another_replica_counts_until_it_is_no_longer_named(
    tasks: TaskKeeper, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The digest mails a buyer only when no stream of theirs is open on any replica.
    monkeypatch.setattr(stream, "PRESENCE_EVERY", 0.05)
    monkeypatch.setattr(stream, "PRESENCE_KEPT", 0.3)
    wire = Wire()
    feed = Feed()
    here, there = FeedHub(feed, tasks, 5, wire.end()), FeedHub(feed, tasks, 5, wire.end())
    assert not there.has_stream(SITE, ANNA)
    async with here.open(SITE, ANNA, None):
        assert there.has_stream(SITE, ANNA) and here.has_stream(SITE, ANNA)
        # Named again while it stays open, past the time one naming is believed.
        await asyncio.sleep(0.6)
        assert there.has_stream(SITE, ANNA)
        assert not there.has_stream(SITE, BuyerID("boris"))
        # A frame committed there reaches the stream here.
        async with here.open(SITE, ANNA, 0) as live:
            added = feed.add(2)
            there.notify(SITE, ANNA)
            assert await seqs_until(live, added[-1]) == added
    await asyncio.sleep(0.6)
    assert not there.has_stream(SITE, ANNA)
