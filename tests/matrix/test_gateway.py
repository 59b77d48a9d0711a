"""Media downloads: authenticated media first, the legacy path only for a homeserver that
lacks it. The tests' Synapse has authenticated media, so an older homeserver is played by
a small server that answers as one would."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from bridge.core.ports import MatrixRejected
from bridge.matrix.gateway import MatrixGateway
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
