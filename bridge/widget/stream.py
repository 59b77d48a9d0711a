"""The buyer's real-time stream: a WebSocket that replays the stored feed, then follows it.

Frames are read from the store, never from memory, so a client that reconnects with
`?since=<seq>` gets exactly what it missed. A wake-up per buyer tells idle connections
that new frames were committed; an idle connection costs one parked coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterator

from aiohttp import WSMsgType, web

from bridge.core.ids import BuyerID, SiteID
from bridge.core.ports import Repository

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0
BATCH = 200


class FeedHub:
    """Wakes the open streams of a buyer when frames for them are committed."""

    def __init__(self) -> None:
        self._listeners: defaultdict[tuple[SiteID, BuyerID], set[asyncio.Event]] = defaultdict(set)

    def notify(self, site: SiteID, buyer_id: BuyerID) -> None:
        for wakeup in self._listeners.get((site, buyer_id), ()):
            wakeup.set()

    @contextlib.contextmanager
    def listening(self, site: SiteID, buyer_id: BuyerID) -> Iterator[asyncio.Event]:
        key = (site, buyer_id)
        wakeup = asyncio.Event()
        self._listeners[key].add(wakeup)
        try:
            yield wakeup
        finally:
            self._listeners[key].discard(wakeup)
            if not self._listeners[key]:
                del self._listeners[key]

    @property
    def open_streams(self) -> int:
        return sum(len(listeners) for listeners in self._listeners.values())


async def stream_feed(
    request: web.Request,
    repository: Repository,
    hub: FeedHub,
    site: SiteID,
    buyer_id: BuyerID,
    since: int,
) -> web.WebSocketResponse:
    socket = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=4096)
    await socket.prepare(request)
    with hub.listening(site, buyer_id) as wakeup:
        sender = asyncio.create_task(
            _send_frames(socket, repository, wakeup, site, buyer_id, since)
        )
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT and _is_ping(message.data):
                    await socket.send_str('{"type":"pong"}')
        finally:
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
    repository: Repository,
    wakeup: asyncio.Event,
    site: SiteID,
    buyer_id: BuyerID,
    since: int,
) -> None:
    last = since
    try:
        while not socket.closed:
            wakeup.clear()
            frames = await repository.frames_since(site, buyer_id, last, BATCH)
            for frame in frames:
                await socket.send_str(
                    json.dumps(
                        {
                            "seq": frame.seq,
                            "type": frame.type,
                            "conversation_id": frame.conversation_id,
                            **frame.payload,
                        },
                        ensure_ascii=False,
                    )
                )
                last = frame.seq
            if len(frames) < BATCH:
                await wakeup.wait()
    except (ConnectionResetError, RuntimeError) as error:
        logger.debug("Stream of %s/%s ended: %r", site, buyer_id, error)
        await socket.close()
