"""Several bridge processes on one database, behind round-robin proxies, as a deployment
with replicas runs them.

`ReplicaSet` writes one config per replica (its own web and appservice ports and log, the
same database, media directory and public URL) and runs each as `python -m bridge run`.
`RoundRobinProxy` stands where the base config's ports were: the marketplace and the
widget reach the web proxy at `web.public_url`, the homeserver pushes transactions to
the appservice proxy at the registration's URL. A replica that is killed refuses or drops
connections, and the proxy passes the request to the next one.

    replicas = ReplicaSet(settings, cluster.url, 3, workdir)
    web, appservice = replicas.web_proxy(), replicas.appservice_proxy()
    await replicas.start_all(); await web.start(); await appservice.start()
    await replicas.kill(0)          # SIGKILL; requests go to replicas 1 and 2
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import yaml
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from bridge.config import parse_config
from bridge.demo.synapse import free_port
from tests.support.loopback import HOP_HEADERS, LoopbackServer
from tests.support.processes import BridgeProcess

# Besides one hop's own headers: a proxy answers `Expect: 100-continue` itself.
NOT_FORWARDED = HOP_HEADERS | {"expect", "proxy-connection", "proxy-authorization"}
# Bodies are read whole so a request can go to the next replica if one drops it; the
# appservice API takes transactions up to 64 MB.
MAX_BODY_BYTES = 128 * 1024 * 1024
# An upstream that refused a connection is tried last for this long.
DOWN_SECONDS = 1.0
CONNECT_TIMEOUT = 5.0
# Close codes that can't go on the wire: the other side vanished without a close frame.
_NO_CLOSE_FRAME = frozenset({1005, 1006, 1015})
_SERVER_GONE = 1011
_CLIENT_GONE = 1001


def _forwarded(headers: Iterable[tuple[str, str]], *, socket: bool = False) -> CIMultiDict[str]:
    """The end-to-end headers; for a WebSocket also without the handshake's own."""
    return CIMultiDict(
        (name, value)
        for name, value in headers
        if name.lower() not in NOT_FORWARDED
        and not (socket and name.lower().startswith("sec-websocket-"))
    )


def _is_websocket(request: web.Request) -> bool:
    return request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket"


class RoundRobinProxy(LoopbackServer):
    """An HTTP proxy on loopback: each request goes to the next of `upstreams` in turn.

    An upstream that refuses the connection, or drops it before answering, is passed over
    and the same request goes to the next one (a load balancer's health check, in effect),
    so a POST a replica took and died on may reach another one too: the bridge's APIs are
    idempotent for that (`client_id`, transaction ids). Only when none answers is the
    answer 502. WebSocket upgrades are relayed frame by frame, pings and close codes too.
    `upstreams` may be replaced while the proxy runs.
    """

    def __init__(self, upstreams: Sequence[str], port: int | None = None) -> None:
        super().__init__()
        if port is not None:
            self.port = port
            self.base = f"http://127.0.0.1:{port}"
        self.upstreams = [upstream.rstrip("/") for upstream in upstreams]
        # Requests (and WebSockets) each upstream answered.
        self.answered: Counter[str] = Counter()
        # Tries that found an upstream refusing or dropping the connection.
        self.passed_over = 0
        # Requests no upstream answered (502).
        self.unanswered = 0
        self._turn = 0
        self._down_until: dict[str, float] = {}
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "the proxy is not started"
        return self._session

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._forward)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT),
            auto_decompress=False,
        )
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _order(self) -> list[str]:
        """This request's turn: the next upstream first, those refusing of late last."""
        upstreams = list(self.upstreams)
        if not upstreams:
            return []
        start = self._turn % len(upstreams)
        self._turn += 1
        turn = upstreams[start:] + upstreams[:start]
        now = time.monotonic()
        up = [upstream for upstream in turn if self._down_until.get(upstream, 0.0) <= now]
        return up + [upstream for upstream in turn if upstream not in up]

    def _pass_over(self, upstream: str, error: aiohttp.ClientConnectionError) -> None:
        self.passed_over += 1
        if isinstance(error, aiohttp.ClientConnectorError):
            self._down_until[upstream] = time.monotonic() + DOWN_SECONDS

    def _no_upstream(self) -> web.Response:
        self.unanswered += 1
        return web.Response(status=502, text="no upstream answered\n")

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if _is_websocket(request):
            return await self._forward_socket(request)
        body = await _read_body(request)
        if body is None:
            return web.Response(status=413, text="request body too large for the proxy\n")
        headers = _forwarded(request.headers.items())
        for upstream in self._order():
            try:
                answer = await self.session.request(
                    request.method,
                    URL(upstream + request.raw_path, encoded=True),
                    headers=headers,
                    data=body or None,
                    allow_redirects=False,
                    skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
                )
            except aiohttp.ClientConnectionError as error:
                self._pass_over(upstream, error)
                continue
            self.answered[upstream] += 1
            async with answer:
                return await _relay_answer(request, answer)
        return self._no_upstream()

    async def _forward_socket(self, request: web.Request) -> web.StreamResponse:
        headers = _forwarded(request.headers.items(), socket=True)
        asked = request.headers.get("Sec-WebSocket-Protocol", "")
        protocols = [name.strip() for name in asked.split(",") if name.strip()]
        for upstream in self._order():
            try:
                upstream_socket = await self.session.ws_connect(
                    URL(upstream + request.raw_path, encoded=True),
                    headers=headers,
                    protocols=protocols,
                    autoping=False,
                    max_msg_size=0,
                )
            except aiohttp.WSServerHandshakeError as refusal:
                # The upstream answered, only not with 101: pass its status on. (Its body is
                # not kept by aiohttp's client.)
                self.answered[upstream] += 1
                return web.Response(status=refusal.status, text=f"{refusal.message}\n")
            except aiohttp.ClientConnectionError as error:
                self._pass_over(upstream, error)
                continue
            self.answered[upstream] += 1
            chosen = () if upstream_socket.protocol is None else (upstream_socket.protocol,)
            socket = web.WebSocketResponse(protocols=chosen, autoping=False, max_msg_size=0)
            try:
                await socket.prepare(request)
                await _relay_frames(socket, upstream_socket)
            finally:
                await upstream_socket.close()
            return socket
        return self._no_upstream()


async def _read_body(request: web.Request) -> bytes | None:
    """The whole body, or None when it is over MAX_BODY_BYTES."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _relay_answer(request: web.Request, answer: aiohttp.ClientResponse) -> web.StreamResponse:
    """The upstream's answer, its body streamed as it comes."""
    response = web.StreamResponse(
        status=answer.status, reason=answer.reason, headers=_forwarded(answer.headers.items())
    )
    if answer.content_length is not None and "Transfer-Encoding" not in answer.headers:
        response.content_length = answer.content_length
    try:
        await response.prepare(request)
    except ConnectionError:
        # The client went away while the upstream answered: nobody to tell.
        if request.transport is not None:
            request.transport.close()
        return response
    try:
        async for chunk in answer.content.iter_any():
            await response.write(chunk)
    except (aiohttp.ClientError, ConnectionError):
        # The upstream died half-way through its answer: the client must see a cut
        # connection too, not a short body that looks whole.
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


async def _pump(source: Socket, sink: Socket) -> None:
    """Frames from `source` to `sink` until `source` closes."""
    with contextlib.suppress(aiohttp.ClientError, ConnectionError):
        async for message in source:
            if message.type == aiohttp.WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            elif message.type == aiohttp.WSMsgType.PING:
                await sink.ping(message.data)
            elif message.type == aiohttp.WSMsgType.PONG:
                await sink.pong(message.data)


async def _relay_frames(client: web.WebSocketResponse, upstream: Socket) -> None:
    """Both directions at once; when one side closes, the other is closed with its code."""
    to_upstream = asyncio.create_task(_pump(client, upstream))
    to_client = asyncio.create_task(_pump(upstream, client))
    try:
        done, _ = await asyncio.wait((to_upstream, to_client), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (to_upstream, to_client):
            task.cancel()
        await asyncio.gather(to_upstream, to_client, return_exceptions=True)
    if to_client in done:
        code = upstream.close_code
        sink: Socket = client
        gone = _SERVER_GONE
    else:
        code = client.close_code
        sink = upstream
        gone = _CLIENT_GONE
    if code is None or code in _NO_CLOSE_FRAME:
        code = gone
    with contextlib.suppress(aiohttp.ClientError, ConnectionError):
        await sink.close(code=code)


class ReplicaSet:
    """`count` bridge processes on `database_url`, one config and log each in `workdir`.

    `settings` is the bridge's raw config (as its YAML file would hold it). Its web and
    appservice ports become the proxies' (`web_proxy`, `appservice_proxy`): each replica
    gets free ports of its own, and all keep its `web.public_url` (the web proxy) and its
    appservice address (the registration's URL, the appservice proxy). The media directory
    is shared; without one in `settings` it is `workdir/media`.
    """

    def __init__(
        self, settings: Mapping[str, Any], database_url: str, count: int, workdir: Path
    ) -> None:
        base = copy.deepcopy(dict(settings))
        base["database"] = database_url
        media = base.setdefault("media", {})
        media.setdefault("directory", str(workdir / "media"))
        config = parse_config(base, environ={})
        self.public_url = config.web.public_url
        self.web_port = config.web.port
        self.appservice_address = config.appservice.address
        self.appservice_port = config.appservice.port
        self.workdir = workdir
        self._base = base
        self._web_ports = [free_port() for _ in range(count)]
        self._appservice_ports = [free_port() for _ in range(count)]
        self.processes = [self._replica(index) for index in range(count)]

    def _replica(self, index: int) -> BridgeProcess:
        settings = copy.deepcopy(self._base)
        web_port = self._web_ports[index]
        settings.setdefault("web", {}).update(
            {"hostname": "127.0.0.1", "port": web_port, "public_url": self.public_url}
        )
        settings.setdefault("appservice", {}).update(
            {
                "hostname": "127.0.0.1",
                "port": self._appservice_ports[index],
                "address": self.appservice_address,
            }
        )
        inbound = (settings.get("email") or {}).get("inbound")
        if isinstance(inbound, dict):
            inbound["port"] = free_port()  # each replica listens for mail of its own
        config_path = self.workdir / f"replica-{index}.yaml"
        config_path.write_text(yaml.safe_dump(settings), encoding="utf-8")
        return BridgeProcess(
            config_path,
            self.workdir / f"replica-{index}.log",
            f"http://127.0.0.1:{web_port}/health/live",
        )

    def __len__(self) -> int:
        return len(self.processes)

    @property
    def web_upstreams(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self._web_ports]

    @property
    def appservice_upstreams(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self._appservice_ports]

    def web_proxy(self) -> RoundRobinProxy:
        """A proxy on the base config's web port, in front of every replica's web API."""
        return RoundRobinProxy(self.web_upstreams, self.web_port)

    def appservice_proxy(self) -> RoundRobinProxy:
        """A proxy on the base config's appservice port, where the homeserver pushes."""
        return RoundRobinProxy(self.appservice_upstreams, self.appservice_port)

    def running(self) -> list[int]:
        return [index for index, process in enumerate(self.processes) if process.running]

    async def start(self, index: int) -> None:
        """Start replica `index` (again) and wait until it serves; nothing if it runs."""
        if not self.processes[index].running:
            await self.processes[index].start()

    async def start_all(self, count: int | None = None) -> None:
        """Start the first `count` replicas (all by default): the first alone, since it
        migrates the database, then the others together."""
        indexes = range(len(self.processes) if count is None else count)
        try:
            for index in indexes[:1]:
                await self.start(index)
            async with asyncio.TaskGroup() as group:
                for index in indexes[1:]:
                    group.create_task(self.start(index))
        except BaseException:
            await self.stop_all()
            raise

    async def kill(self, index: int) -> int:
        """SIGKILL replica `index`; returns its pid."""
        return await self.processes[index].kill()

    async def stop(self, index: int) -> None:
        """SIGTERM replica `index`, as an operator stops it."""
        await self.processes[index].stop()

    async def stop_all(self) -> None:
        await asyncio.gather(*(process.stop() for process in self.processes))

    async def __aenter__(self) -> Self:
        await self.start_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop_all()
