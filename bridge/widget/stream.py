"""The buyer's real-time stream: a WebSocket that replays the stored feed, then follows it.

Frames are read from the store, so a client that reconnects with `?since=<seq>` gets
exactly what it missed. Each buyer with open streams has one reader: a wake-up makes it
read the buyer's new frames once and hand them to every stream of that buyer; it runs only
while there is something to read. A stream that
opens (or falls too far behind) first reads its own backlog from the store, up to where the
reader stood when it joined, then takes the reader's frames: no gap, no repeat. A buyer has
at most `max_streams` open; a new one closes the oldest with `REPLACED`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from bridge.core.duties import Duties, SoleDuties
from bridge.core.ids import BuyerID, SiteID
from bridge.core.storage import FeedReader, StoredFrame
from bridge.core.tasks import TaskKeeper

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0
# What replicas tell each other when a buyer's frames are committed.
FEED_TOPIC = "feed"
# ...and which buyers have a stream open on them, every PRESENCE_EVERY seconds (and when
# one opens); a buyer not named again within PRESENCE_KEPT is taken to have gone.
STREAMS_TOPIC = "streams"
PRESENCE_EVERY = 20.0
PRESENCE_KEPT = 2.5 * PRESENCE_EVERY
# Buyers named in one telling, well inside NOTIFY's payload limit.
PRESENCE_BATCH = 100
BATCH = 200
# Frames a stream may have waiting to be sent; past that (a client that reads slowly or
# not at all) it stops being handed frames and catches up from the store when it can.
MAX_WAITING = 2 * BATCH


@dataclass(frozen=True)
class FeedFrame:
    seq: int
    # The frame as the client receives it, made once for all of the buyer's streams.
    text: str


class FeedClosed(Exception):
    """The hub ended a stream; the WebSocket closes with this code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


# A newer stream of the same buyer took this one's place; the widget reconnects only when
# its page is looked at again, so tabs never take turns closing each other.
REPLACED = (4000, "replaced")
# The buyer's feed could not be read; the client reconnects with `since` as after a drop.
FEED_FAILED = (1011, "feed unavailable")


def _feed_frame(frame: StoredFrame) -> FeedFrame:
    body = {
        "seq": frame.seq,
        "type": frame.type,
        "conversation_id": frame.conversation_id,
        **frame.payload,
    }
    return FeedFrame(frame.seq, json.dumps(body, ensure_ascii=False))


class _BuyerFeed:
    """The streams of one buyer and the one reader that reads their new frames."""

    def __init__(self, store: FeedReader, site: SiteID, buyer_id: BuyerID, cursor: int) -> None:
        self.store = store
        self.site = site
        self.buyer_id = buyer_id
        # Every frame up to here has been handed to the streams that were open then.
        self.cursor = cursor
        # Oldest first: the one a new stream closes.
        self.streams: dict[OpenStream, None] = {}
        # New frames were committed since the reader last looked; set at first, so frames
        # committed before the feed opened are read at once.
        self.pending = True
        # Runs only while there is something to read: an idle buyer costs no task.
        self.reader: asyncio.Task[None] | None = None

    async def read(self, since: int) -> list[FeedFrame]:
        stored = await self.store.frames_since(self.site, self.buyer_id, since, BATCH)
        return [_feed_frame(frame) for frame in stored]

    async def follow(self) -> None:
        """Read until no wake-up is left unread, then stop."""
        while self.pending:
            self.pending = False
            while True:
                frames = await self.read(self.cursor)
                if frames:
                    # No await between the two: a stream that joins sees either the old
                    # cursor and these frames, or the new cursor and not these frames.
                    self.cursor = frames[-1].seq
                    for stream in self.streams:
                        stream.hand(frames)
                if len(frames) < BATCH:
                    break


class OpenStream:
    """One open stream's place in its buyer's feed.

    Thousands stay open and idle, so each is kept small: slots, a list for the frames
    waiting and a future made only while the sender waits (an empty deque, as in an
    asyncio.Event, is some 600 bytes on its own)."""

    __slots__ = (
        "_behind",
        "_closed",
        "_feed",
        "_joined_at",
        "_waiter",
        "_waiting",
        "last",
        "sender_closes",
    )

    def __init__(self, feed: _BuyerFeed, since: int) -> None:
        self._feed = feed
        # The newest seq given to the client.
        self.last = since
        # Frames after this are handed over by the reader; up to it, read from the store.
        self._joined_at = feed.cursor
        self._waiting: list[FeedFrame] = []
        # Set by the sender when it closes the socket itself, with the hub's close code.
        self.sender_closes = False
        self._behind = False
        self._closed: tuple[int, str] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def hand(self, frames: list[FeedFrame]) -> None:
        if self._behind or self._closed is not None:
            return
        if len(self._waiting) + len(frames) > MAX_WAITING:
            # Too far behind to keep in memory: the store still has every frame.
            self._waiting.clear()
            self._behind = True
        else:
            self._waiting.extend(frames)
        self._wake()

    def close(self, why: tuple[int, str]) -> None:
        self._closed = why
        self._waiting.clear()
        self._wake()

    async def next_frames(self) -> list[FeedFrame]:
        """The frames after the last ones given, oldest first, waiting until there are
        some; raises FeedClosed when the hub ends this stream."""
        while True:
            if self._closed is not None:
                raise FeedClosed(*self._closed)
            if self._behind:
                self._behind = False
                self._joined_at = self._feed.cursor
            if self.last < self._joined_at:
                backlog = [f for f in await self._feed.read(self.last) if f.seq <= self._joined_at]
                if self._closed is not None:
                    continue
                if not backlog:
                    self.last = self._joined_at  # nothing stored in between
                    continue
                self.last = backlog[-1].seq
                return backlog
            fresh = [frame for frame in self._waiting if frame.seq > self.last]
            self._waiting.clear()
            if fresh:
                self.last = fresh[-1].seq
                return fresh
            # Nothing awaited since the checks above: a frame handed over from here on
            # finds the waiter.
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


class FeedHub:
    """The buyers' open streams, fed by one reader per buyer, at most `max_streams` each."""

    def __init__(
        self,
        store: FeedReader,
        tasks: TaskKeeper,
        max_streams: int,
        duties: Duties | None = None,
    ) -> None:
        self._store = store
        self._tasks = tasks
        self._max_streams = max_streams
        self._feeds: dict[tuple[SiteID, BuyerID], _BuyerFeed] = {}
        # A buyer's stream may be open on another replica: every other one is told too.
        self._duties = duties or SoleDuties()
        self._duties.hear(FEED_TOPIC, self._heard)
        # Buyers with a stream open on another replica, and until when that is believed.
        self._elsewhere: dict[tuple[SiteID, BuyerID], float] = {}
        self._duties.hear(STREAMS_TOPIC, self._heard_streams)
        self._announcer: asyncio.Task[None] | None = None

    def notify(self, site: SiteID, buyer_id: BuyerID) -> None:
        """Frames for the buyer were committed."""
        self._notify_here(site, buyer_id)
        self._duties.tell_others(FEED_TOPIC, f"{site} {buyer_id}")

    def _notify_here(self, site: SiteID, buyer_id: BuyerID) -> None:
        feed = self._feeds.get((site, buyer_id))
        if feed is not None:
            feed.pending = True
            self._read(feed)

    def _heard(self, detail: str) -> None:
        """Another replica committed frames; "" when some word of it may have been lost."""
        site, _, buyer_id = detail.partition(" ")
        if buyer_id:
            self._notify_here(SiteID(site), BuyerID(buyer_id))
            return
        for feed in list(self._feeds.values()):
            feed.pending = True
            self._read(feed)

    def has_stream(self, site: SiteID, buyer_id: BuyerID) -> bool:
        """Whether the buyer has a stream open now, here or on another replica (they see
        replies as they come)."""
        feed = self._feeds.get((site, buyer_id))
        if feed is not None and feed.streams:
            return True
        until = self._elsewhere.get((site, buyer_id))
        return until is not None and until > time.monotonic()

    def _heard_streams(self, detail: str) -> None:
        """Another replica's buyers with a stream open, one "site buyer" per line."""
        until = time.monotonic() + PRESENCE_KEPT
        for line in detail.splitlines():
            site, _, buyer_id = line.partition(" ")
            if buyer_id:
                self._elsewhere[(SiteID(site), BuyerID(buyer_id))] = until
        now = time.monotonic()
        for key in [key for key, kept in self._elsewhere.items() if kept <= now]:
            del self._elsewhere[key]

    def _tell_streams(self, keys: list[tuple[SiteID, BuyerID]]) -> None:
        for start in range(0, len(keys), PRESENCE_BATCH):
            lines = (
                f"{site} {buyer_id}" for site, buyer_id in keys[start : start + PRESENCE_BATCH]
            )
            self._duties.tell_others(STREAMS_TOPIC, "\n".join(lines))

    async def _announce(self) -> None:
        """Name this replica's buyers with a stream open to the others, while there are."""
        while self._feeds:
            await asyncio.sleep(PRESENCE_EVERY)
            self._tell_streams(list(self._feeds))

    def _read(self, feed: _BuyerFeed) -> None:
        """Start the feed's reader unless it runs: a running one sees `pending` before it
        stops (no await lies between its last look and its end)."""
        if feed.reader is None or feed.reader.done():
            feed.reader = self._tasks.spawn(
                self._follow(feed), name=f"feed:{feed.site}/{feed.buyer_id}"
            )

    @contextlib.asynccontextmanager
    async def open(
        self, site: SiteID, buyer_id: BuyerID, since: int | None
    ) -> AsyncIterator[OpenStream]:
        """A stream of the buyer's frames after `since` (None: from now on), until the block
        ends."""
        key = (site, buyer_id)
        feed = self._feeds.get(key)
        if feed is None:
            latest = await self._store.latest_frame(site, buyer_id)
            feed = self._feeds.get(key)  # another stream of the buyer may have opened meanwhile
            if feed is None:
                feed = _BuyerFeed(self._store, site, buyer_id, latest)
                self._feeds[key] = feed
                self._read(feed)
                if not self._duties.alone:
                    self._tell_streams([key])
                    if self._announcer is None or self._announcer.done():
                        self._announcer = self._tasks.spawn(self._announce(), name="feed-presence")
        stream = OpenStream(feed, feed.cursor if since is None else since)
        feed.streams[stream] = None
        while len(feed.streams) > self._max_streams:
            oldest = next(iter(feed.streams))
            del feed.streams[oldest]
            oldest.close(REPLACED)
        try:
            yield stream
        finally:
            feed.streams.pop(stream, None)
            if not feed.streams and self._feeds.get(key) is feed:
                del self._feeds[key]
                if feed.reader is not None:
                    feed.reader.cancel()

    async def _follow(self, feed: _BuyerFeed) -> None:
        try:
            await feed.follow()
        except Exception:
            logger.exception("Reading the feed of %s/%s failed", feed.site, feed.buyer_id)
            if self._feeds.get((feed.site, feed.buyer_id)) is feed:
                del self._feeds[(feed.site, feed.buyer_id)]
            for stream in list(feed.streams):
                stream.close(FEED_FAILED)
            feed.streams.clear()

    @property
    def open_streams(self) -> int:
        return sum(len(feed.streams) for feed in self._feeds.values())


async def stream_feed(
    request: web.Request, hub: FeedHub, site: SiteID, buyer_id: BuyerID, since: int | None
) -> web.WebSocketResponse:
    socket = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=4096)
    await socket.prepare(request)
    async with hub.open(site, buyer_id, since) as stream:
        sender = asyncio.create_task(_send_frames(socket, stream, site, buyer_id))
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT and _is_ping(message.data):
                    await socket.send_str('{"type":"pong"}')
        finally:
            # A sender that closes the socket finishes the close handshake, so the client
            # learns the close code; any other sender just stops.
            if not stream.sender_closes:
                sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
    return socket


def _is_ping(text: str) -> bool:
    try:
        frame = json.loads(text)
    except ValueError:
        return False
    return isinstance(frame, dict) and frame.get("type") == "ping"


async def _send_frames(
    socket: web.WebSocketResponse,
    stream: OpenStream,
    site: SiteID,
    buyer_id: BuyerID,
) -> None:
    code, reason = 1000, ""
    try:
        while not socket.closed:
            for frame in await stream.next_frames():
                await socket.send_str(frame.text)
        return
    except FeedClosed as closed:
        code, reason = closed.code, closed.reason
    except (ConnectionResetError, RuntimeError) as error:
        logger.debug("Stream of %s/%s ended: %r", site, buyer_id, error)
    except Exception:
        logger.exception("Stream of %s/%s failed", site, buyer_id)
        code, reason = FEED_FAILED
    stream.sender_closes = True
    await socket.close(code=code, message=reason.encode())
