"""A fault-injecting HTTP proxy between the bridge and the real Synapse.

It passes every request through as it is until told to lose answers: then, in each of a
number of rooms, one buyer message send is carried out by Synapse and the bridge's
connection is cut instead of answered, the way a homeserver going down mid-request looks
from the bridge. A room that lost its answer is cut from then on (its requests' connections
are closed unanswered), and once every room lost one, the whole path is, until `release()`.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from tests.support.loopback import HOP_HEADERS, ProxyServer

# A buyer message into a conversation room: PUT .../send/m.room.message/bazaar-m…
_BUYER_SEND = re.compile(r"^/_matrix/client/v3/rooms/([^/]+)/send/m\.room\.message/bazaar-m")


class FaultyPath(ProxyServer):
    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self._rooms_to_lose = 0
        self._sends_before_loss = 0
        self._sends: dict[str, int] = {}
        self._cut_everything = False
        # Rooms whose buyer send was carried out and its answer lost, in order.
        self.lost_in: list[str] = []
        self.all_lost = asyncio.Event()

    def lose_answers(self, rooms: int = 1, *, after: int = 0) -> None:
        """In each of the next `rooms` rooms to see buyer sends, let `after` sends through
        and lose the answer of the one after them."""
        self._rooms_to_lose, self._sends_before_loss = rooms, after
        self._sends.clear()
        self.lost_in.clear()
        self.all_lost.clear()

    def release(self) -> None:
        self._cut_everything = False
        self.lost_in.clear()

    def _is_cut(self, path: str) -> bool:
        return self._cut_everything or any(f"/rooms/{room}/" in path for room in self.lost_in)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if self._is_cut(request.path):
            return self._hang_up(request)
        send = _BUYER_SEND.match(request.path)
        losing = send is not None and self._loses(send.group(1))
        upstream_status, answer, answer_headers = await self._pass_on(request)
        if losing and send is not None:
            # Carried out by Synapse; the answer never reaches the bridge.
            self.lost_in.append(send.group(1))
            if len(self.lost_in) == self._rooms_to_lose:
                self._rooms_to_lose = 0
                self._cut_everything = True
                self.all_lost.set()
            return self._hang_up(request)
        return web.Response(status=upstream_status, body=answer, headers=answer_headers)

    def _loses(self, room: str) -> bool:
        """Count a buyer send into `room`: True when it is the one whose answer is lost."""
        if len(self.lost_in) >= self._rooms_to_lose:
            return False
        if room not in self._sends and len(self._sends) >= self._rooms_to_lose:
            return False
        seen = self._sends.get(room, 0)
        self._sends[room] = seen + 1
        return seen == self._sends_before_loss

    async def _pass_on(self, request: web.Request) -> tuple[int, bytes, dict[str, str]]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        body = await request.read()
        async with self.session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body or None,
            allow_redirects=False,
        ) as upstream:
            answer = await upstream.read()
            kept = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS}
            return upstream.status, answer, kept

    @staticmethod
    def _hang_up(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.close()
        # Nothing can be written on a closed connection; aiohttp drops this quietly.
        return web.Response(status=502)
