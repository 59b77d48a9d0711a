"""A path between Synapse and the bridge's appservice port that can withhold a sender's
events: it passes every call on, but while it withholds someone it takes their events out
of each transaction and lets Synapse hear 200 all the same. To the bridge that is what a
homeserver losing events at shutdown looks like (element-hq/synapse#11637): the events are
in the room, and no transaction ever brings them."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiohttp import web

from tests.support.loopback import HOP_HEADERS, ProxyServer


class WithholdingPath(ProxyServer):
    def __init__(self, port: int, upstream_port: int) -> None:
        super().__init__(f"http://127.0.0.1:{upstream_port}")
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.withheld_sender: str | None = None
        # The events taken out, in the order Synapse pushed them.
        self.withheld: list[dict[str, Any]] = []

    def withhold(self, sender: str | None) -> None:
        """Take `sender`'s events out of the transactions from now on (None: none)."""
        self.withheld_sender = sender

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.method == "PUT" and "/transactions/" in request.path and self.withheld_sender:
            transaction = json.loads(body)
            kept = []
            for event in transaction.get("events", []):
                if event.get("sender") == self.withheld_sender:
                    self.withheld.append(event)
                else:
                    kept.append(event)
            body = json.dumps(transaction | {"events": kept}).encode()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        try:
            async with self.session.request(
                request.method, self.upstream + request.path_qs, headers=headers, data=body
            ) as upstream:
                answer = await upstream.read()
                return web.Response(
                    status=upstream.status,
                    body=answer,
                    content_type=upstream.content_type,
                )
        except aiohttp.ClientConnectionError:
            # The bridge is down: Synapse keeps the transaction and tries again.
            return web.Response(status=502)
