"""A marketplace's webhook endpoint on loopback that checks every signature it receives."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

from aiohttp import web

from tests.support.loopback import LoopbackServer


class WebhookReceiver(LoopbackServer):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret
        self.url = f"{self.base}/hooks"
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        self.bad_signatures = 0
        self.failures_left = 0
        self._arrived = asyncio.Condition()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/hooks", self._hook)

    async def _hook(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.read()
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Bazaar-Signature", ""), expected):
            self.bad_signatures += 1
            return web.Response(status=401)
        if self.failures_left > 0:
            self.failures_left -= 1
            return web.Response(status=503)
        async with self._arrived:
            self.received.append(json.loads(body))
            self._arrived.notify_all()
        return web.Response(status=204)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.received if event["type"] == kind]

    async def wait_for(self, kind: str, count: int = 1, within: float = 45) -> list[dict[str, Any]]:
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.of_type(kind)) >= count)
        return self.of_type(kind)
