"""Media downloads: authenticated media first, the legacy path only for a homeserver that
lacks it. The tests' Synapse has authenticated media, so an older homeserver is played by
a small server that answers as one would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from bridge.core.ports import HomeserverUnavailable, MatrixRejected
from bridge.demo.synapse import free_port
from bridge.matrix.gateway import MatrixGateway, without_silent_retries
from tests.support.loopback import LoopbackServer

TOKEN = "as-token-for-the-test-homeserver-0123456789"
FILE = b"%PDF-1.4\n" + bytes(range(256)) * 8


class OlderHomeserver(LoopbackServer):
    """Knows only `/_matrix/media/v3/download` unless `authenticated_media` is set."""

    def __init__(self, *, authenticated_media: bool) -> None:
        super().__init__()
        self.authenticated_media = authenticated_media
        self.paths: list[str] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/{tail:.*}", self.serve)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        self.paths.append(request.path)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"errcode": "M_MISSING_TOKEN"}, status=401)
        known = {"/_matrix/media/v3/download/example.org/abc"}
        if self.authenticated_media:
            known.add("/_matrix/client/v1/media/download/example.org/abc")
        if request.path not in known:
            return web.json_response(
                {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}, status=404
            )
        return web.Response(body=FILE, content_type="application/pdf")


@pytest_asyncio.fixture(loop_scope="session")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.mark.parametrize("authenticated_media", [True, False])
async def test_download_uses_authenticated_media_where_the_homeserver_has_it(
    session: aiohttp.ClientSession, authenticated_media: bool
) -> None:
    homeserver = OlderHomeserver(authenticated_media=authenticated_media)
    await homeserver.start()
    try:
        gateway = MatrixGateway(homeserver.base, TOKEN, session)
        data, declared = await gateway.download("mxc://example.org/abc", max_bytes=1 << 20)
    finally:
        await homeserver.stop()
    assert (data, declared) == (FILE, "application/pdf")
    expected = ["/_matrix/client/v1/media/download/example.org/abc"]
    if not authenticated_media:
        expected.append("/_matrix/media/v3/download/example.org/abc")
    assert homeserver.paths == expected


async def test_download_refuses_what_is_too_big_or_not_an_mxc(
    session: aiohttp.ClientSession,
) -> None:
    homeserver = OlderHomeserver(authenticated_media=True)
    await homeserver.start()
    try:
        gateway = MatrixGateway(homeserver.base, TOKEN, session)
        with pytest.raises(MatrixRejected) as refused:
            await gateway.download("mxc://example.org/abc", max_bytes=len(FILE) - 1)
        assert refused.value.errcode == "M_TOO_LARGE"
        with pytest.raises(MatrixRejected) as missing:
            await gateway.download("mxc://example.org/other", max_bytes=1 << 20)
        assert missing.value.errcode == "M_UNRECOGNIZED"
        for bad in ("https://example.org/abc", "mxc://example.org/../../etc", "mxc://x"):
            with pytest.raises(ValueError, match="not an mxc"):
                await gateway.download(bad, max_bytes=1 << 20)
    finally:
        await homeserver.stop()


class RefusingHomeserver(LoopbackServer):
    """Answers `/answer/{status}/{errcode}` with that status and errcode; `/drop` cuts the
    connection without an answer."""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/answer/{status}/{errcode}", self.answer)
        app.router.add_post("/drop", self.drop)

    async def answer(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"errcode": request.match_info["errcode"], "error": "as asked"},
            status=int(request.match_info["status"]),
        )

    async def drop(self, request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()


@pytest.mark.parametrize(
    ("status", "errcode", "permanent"),
    [
        (400, "M_INVALID_USERNAME", True),
        (400, "M_BAD_JSON", True),
        (400, "M_INVALID_PARAM", True),
        (413, "M_TOO_LARGE", True),
        (403, "M_FORBIDDEN", False),
        (404, "M_NOT_FOUND", False),
        (401, "M_UNKNOWN_TOKEN", False),
    ],
)
async def test_a_refusal_says_whether_a_later_try_could_succeed(
    session: aiohttp.ClientSession, status: int, errcode: str, permanent: bool
) -> None:
    homeserver = RefusingHomeserver()
    await homeserver.start()
    try:
        gateway = MatrixGateway(homeserver.base, TOKEN, session)
        with pytest.raises(MatrixRejected) as refused:
            await gateway.request("POST", f"/answer/{status}/{errcode}", {})
    finally:
        await homeserver.stop()
    assert (refused.value.errcode, refused.value.permanent) == (errcode, permanent)


@pytest.mark.parametrize(
    ("path", "maybe_done"),
    [
        ("/answer/429/M_LIMIT_EXCEEDED", False),
        ("/answer/500/M_UNKNOWN", True),
        ("/answer/502/M_UNKNOWN", True),
        ("/drop", True),
        (None, False),
    ],
)
async def test_an_unanswered_request_says_whether_it_may_have_been_carried_out(
    session: aiohttp.ClientSession, path: str | None, maybe_done: bool
) -> None:
    homeserver = RefusingHomeserver()
    await homeserver.start()
    try:
        # None: nothing listens, so the request never leaves.
        base = homeserver.base if path is not None else f"http://127.0.0.1:{free_port()}"
        gateway = MatrixGateway(base, TOKEN, session)
        with pytest.raises(HomeserverUnavailable) as unavailable:
            await gateway.request("POST", path or "/anything", {})
    finally:
        await homeserver.stop()
    assert unavailable.value.maybe_done is maybe_done


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    return head + await reader.readexactly(length)


async def test_a_send_whose_connection_drops_once_the_homeserver_took_it_may_have_been_done() -> (
    None
):
    """The homeserver carries out a send and goes down before answering, on a connection
    kept alive from an earlier call: the bridge must not take the refused reconnect for a
    send that never left, or it sends again to a homeserver that forgot the txn id."""
    carried_out: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        )
        await writer.drain()
        carried_out.append(await _read_request(reader))
        server.close()  # down: nothing listens any more
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with without_silent_retries(aiohttp.ClientSession()) as client:
        gateway = MatrixGateway(f"http://127.0.0.1:{port}", TOKEN, client)
        await gateway.request("GET", "/_matrix/client/versions")
        with pytest.raises(HomeserverUnavailable) as unavailable:
            await gateway.request("PUT", "/_matrix/client/v3/rooms/!r/send/m.room.message/t1", {})
    assert len(carried_out) == 1 and carried_out[0].startswith(b"PUT ")
    assert unavailable.value.maybe_done is True
