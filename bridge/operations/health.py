"""The web port's operational routes: `/metrics`, `/health/live` and `/health/ready`.

Liveness says only that the process serves HTTP; readiness that it can do its work: the
database answers `SELECT 1` and the homeserver answers `GET /_matrix/client/versions`,
each within `READY_TIMEOUT_SECONDS`. None of them asks for a token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bridge.errors import Unavailable
from bridge.operations.metrics import PrometheusMeter

logger = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Readiness:
    """What `/health/ready` asks."""

    database: Callable[[], Awaitable[None]]
    homeserver_address: str
    http: aiohttp.ClientSession

    async def _homeserver(self) -> None:
        url = self.homeserver_address.rstrip("/") + "/_matrix/client/versions"
        async with self.http.get(url) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
            await response.read()

    async def problems(self) -> list[str]:
        """The parts that did not answer in time, each with why; empty when ready."""

        async def check(name: str, probe: Callable[[], Awaitable[None]]) -> str | None:
            try:
                async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                    await probe()
            except TimeoutError:
                return f"{name}: no answer within {READY_TIMEOUT_SECONDS:.0f} s"
            except Exception as error:
                return f"{name}: {error!r}"
            return None

        found = await asyncio.gather(
            check("database", self.database), check("homeserver", self._homeserver)
        )
        return [problem for problem in found if problem is not None]


def operations_routes(app: web.Application, meter: PrometheusMeter, readiness: Readiness) -> None:
    async def metrics(request: web.Request) -> web.Response:
        body = await meter.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def live(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(request: web.Request) -> web.Response:
        problems = await readiness.problems()
        if problems:
            logger.warning("Not ready: %s", "; ".join(problems))
            raise Unavailable("Not ready: " + "; ".join(problems), errcode="BAZAAR_NOT_READY")
        return web.json_response({"status": "ok"})

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
