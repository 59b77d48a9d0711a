"""Product images (`context.image_url`) as the bridge fetches them for room avatars: whole
however they arrive, never from the bridge's own network unless configured, with few
redirects, no credentials, a size cap and one deadline, and only pictures it may decode."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import nio
import pytest
import pytest_asyncio
from aiohttp import web

from bridge.config import MediaConfig
from bridge.media.images import REDIRECTS, ProductImages, is_public_address
from bridge.media.library import MediaLibrary
from tests.conftest import BridgeRunner, product
from tests.support import files
from tests.support.loopback import LoopbackServer
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

NewSeller = Callable[[str], Awaitable[SellerClient]]
PHOTO = files.noise_png(200, 150)  # about 90 KB: more than one read's worth


class Shop(LoopbackServer):
    """A marketplace's image server that remembers every request it was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.images: dict[str, bytes] = {"kettle.png": PHOTO}
        self.requests: list[web.Request] = []
        self.slow_hop = 0.0
        self.streamed_whole = False

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/hop/{left}", self._hop)
        app.router.add_get("/to", self._redirect_to)
        app.router.add_get("/stream/{name}", self._stream)
        app.router.add_get("/{name}", self._image)
        app.router.add_get("/", self._image)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{path}"

    @property
    def paths(self) -> list[str]:
        return [request.path_qs for request in self.requests]

    async def _image(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        found = self.images.get(request.match_info.get("name", "kettle.png"))
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(body=found, content_type="image/png")

    async def _hop(self, request: web.Request) -> web.Response:
        """/hop/N redirects N times, then serves the photo."""
        self.requests.append(request)
        await asyncio.sleep(self.slow_hop)
        left = int(request.match_info["left"])
        if left == 0:
            return web.Response(body=PHOTO, content_type="image/png")
        raise web.HTTPFound(f"/hop/{left - 1}")

    async def _redirect_to(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        raise web.HTTPFound(request.query["location"])

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        """The image without a Content-Length, chunk by chunk; `streamed_whole` once all of
        it went."""
        self.requests.append(request)
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        data = self.images[request.match_info["name"]]
        for at in range(0, len(data), 256 * 1024):
            await response.write(data[at : at + 256 * 1024])
        await response.write_eof()
        self.streamed_whole = True
        return response


class RawServer:
    """An HTTP server written on the socket by hand, for bodies that arrive in pieces."""

    def __init__(self, body: bytes, pieces: list[tuple[int, float]]) -> None:
        # `pieces`: (bytes to send, seconds to wait before sending them)
        self.body = body
        self.pieces = pieces
        self.requests = 0
        self.sent = 0
        self.client_left = False
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/photo.png"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(self.body)
            )
            for size, wait in self.pieces:
                await asyncio.sleep(wait)
                # A client that hung up is seen in what it sends (the end) or in the
                # connection being lost (a reset), not only in a write that fails: the
                # kernel may take a few more bytes first, and uvloop's transport refuses
                # a write after the loss with a RuntimeError.
                if reader.at_eof() or writer.is_closing():
                    raise ConnectionResetError("the client hung up")
                writer.write(self.body[self.sent : self.sent + size])
                await writer.drain()
                self.sent += size
        except (ConnectionError, asyncio.IncompleteReadError):
            self.client_left = True
        finally:
            writer.close()


@pytest_asyncio.fixture(loop_scope="session")
async def shop() -> AsyncIterator[Shop]:
    server = Shop()
    await server.start()
    yield server
    await server.stop()


def product_images(tmp_path: Path, **settings: Any) -> ProductImages:
    config = MediaConfig(directory=tmp_path / "media", **settings)
    return ProductImages(MediaLibrary(config), config)


# -- Whole bodies ---------------------------------------------------------------------------------


async def test_an_image_that_arrives_in_two_writes_is_read_whole(tmp_path: Path) -> None:
    half = len(PHOTO) // 2
    server = RawServer(PHOTO, [(half, 0), (len(PHOTO) - half, 0.3)])
    url = await server.start()
    try:
        image = await product_images(tmp_path, allow_private_fetch=True).fetch(url)
    finally:
        await server.stop()

    assert image is not None
    assert (image.data, image.content_type, image.filename) == (PHOTO, "image/png", "photo.png")


async def test_a_trickling_image_is_given_up_at_the_deadline(tmp_path: Path) -> None:
    small = files.png(8, 8)
    # One byte every 20 ms: whole after seconds, long past the deadline.
    server = RawServer(small, [(1, 0.02)] * len(small))
    url = await server.start()
    images = product_images(tmp_path, allow_private_fetch=True, fetch_timeout_seconds=0.5)
    try:
        assert await images.fetch(url) is None

        async def gone() -> bool:
            return server.client_left

        await eventually(gone, within=10, what="the bridge hanging up")
        assert server.sent < len(small)
    finally:
        await server.stop()


async def test_the_deadline_covers_every_redirect(tmp_path: Path, shop: Shop) -> None:
    # Each hop answers well within the deadline; all of them together don't.
    shop.slow_hop = 0.4
    images = product_images(tmp_path, allow_private_fetch=True, fetch_timeout_seconds=1)
    try:
        assert await images.fetch(shop.url("hop/3")) is None
    finally:
        shop.slow_hop = 0
    assert "/hop/0" not in shop.paths


@pytest.mark.parametrize("path", ["big.png", "stream/big.png"])
async def test_an_image_over_5_mb_is_refused(tmp_path: Path, shop: Shop, path: str) -> None:
    big = files.noise_png(1600, 1500)
    assert len(big) > 5 * 1024 * 1024
    shop.images["big.png"] = big

    assert await product_images(tmp_path, allow_private_fetch=True).fetch(shop.url(path)) is None
    assert shop.paths[-1] == f"/{path}"

    images = product_images(tmp_path, allow_private_fetch=True, fetch_max_bytes=len(big))
    fetched = await images.fetch(shop.url(path))
    assert fetched is not None and fetched.data == big


async def test_a_body_is_given_up_as_soon_as_it_passes_the_cap(tmp_path: Path, shop: Shop) -> None:
    # A picture followed by 40 MB that a decoder would skip, sent without a length.
    shop.images["padded.png"] = PHOTO + bytes(40 * 1024 * 1024)
    shop.streamed_whole = False

    assert (
        await product_images(tmp_path, allow_private_fetch=True).fetch(
            shop.url("stream/padded.png")
        )
        is None
    )

    assert shop.paths[-1] == "/stream/padded.png"
    assert not shop.streamed_whole


# -- Where it may be fetched from -----------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",  # a name that resolves to loopback
        "[::ffff:127.0.0.1]",  # loopback as an IPv4-mapped IPv6 address
        "0.0.0.0",  # which Linux connects to loopback
        "127.1",  # a short form that getaddrinfo would expand
        "2130706433",  # 127.0.0.1 as one decimal number
    ],
)
async def test_the_bridges_own_machine_is_never_asked_unless_allowed(
    tmp_path: Path, shop: Shop, host: str
) -> None:
    before = len(shop.requests)

    assert await product_images(tmp_path).fetch(shop.url("kettle.png", host)) is None

    assert len(shop.requests) == before
    if host in ("127.0.0.1", "localhost"):
        allowed = await product_images(tmp_path, allow_private_fetch=True).fetch(
            shop.url("kettle.png", host)
        )
        assert allowed is not None and allowed.data == PHOTO


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("127.255.0.9", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),  # a cloud's metadata service
        ("224.0.0.251", False),
        ("239.255.255.250", False),
        ("255.255.255.255", False),
        ("240.0.0.1", False),
        ("0.0.0.0", False),
        ("::", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:a00:1::", False),  # 6to4 of 10.0.0.1
        ("fe80::1", False),
        ("fec0::1", False),
        ("fc00::1", False),
        ("fd12:3456::1", False),
        ("ff02::1", False),
    ],
)
def test_only_public_addresses_are_fetched_from(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


async def test_at_most_3_redirects_are_followed(tmp_path: Path, shop: Shop) -> None:
    images = product_images(tmp_path, allow_private_fetch=True)
    assert REDIRECTS == 3

    fetched = await images.fetch(shop.url("hop/3"))
    assert fetched is not None and fetched.data == PHOTO

    before = len(shop.requests)
    assert await images.fetch(shop.url("hop/4")) is None
    assert shop.paths[before:] == ["/hop/4", "/hop/3", "/hop/2", "/hop/1"]


@pytest.mark.parametrize(
    "location",
    ["file:///etc/passwd", "ftp://127.0.0.1/kettle.png", "gopher://127.0.0.1:6379/_INFO"],
)
async def test_a_redirect_may_lead_only_to_http(tmp_path: Path, shop: Shop, location: str) -> None:
    images = product_images(tmp_path, allow_private_fetch=True)

    assert await images.fetch(shop.url(f"to?location={location}")) is None


async def test_credentials_in_the_url_are_never_sent(tmp_path: Path, shop: Shop) -> None:
    images = product_images(tmp_path, allow_private_fetch=True)
    onward = f"http://admin:hunter2@127.0.0.1:{shop.port}/kettle.png"
    before = len(shop.requests)

    fetched = await images.fetch(f"http://buyer:secret@127.0.0.1:{shop.port}/to?location={onward}")

    assert fetched is not None and fetched.data == PHOTO
    # The shop's front page, its logo: named without the URL's user and password.
    front = await images.fetch(f"http://buyer:secret@127.0.0.1:{shop.port}")
    assert front is not None and front.data == PHOTO
    assert front.filename == "product"
    asked = shop.requests[before:]
    assert [request.path for request in asked] == ["/to", "/kettle.png", "/"]
    assert [request.headers.get("Authorization") for request in asked] == [None, None, None]


# -- What may be kept -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "picture",
    [
        pytest.param(files.long_png(1, 39_000_000), id="1x39M"),
        pytest.param(files.long_png(4100, 100), id="too-long"),
        pytest.param(files.truncated_png(), id="cut"),
        pytest.param(files.html_named_png(), id="html"),
    ],
)
async def test_a_pixel_bomb_or_a_broken_picture_is_not_kept(
    tmp_path: Path, shop: Shop, picture: bytes
) -> None:
    shop.images["product.png"] = picture

    assert (
        await product_images(tmp_path, allow_private_fetch=True).fetch(shop.url("product.png"))
        is None
    )
    assert shop.paths[-1] == "/product.png"


@pytest.mark.synapse
async def test_a_pixel_bomb_never_becomes_a_room_avatar(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller, shop: Shop
) -> None:
    assert runner.config.media.allow_private_fetch  # the tests' shop is on loopback
    runner.config = replace(runner.config, media=replace(runner.config.media, max_image_side=1000))
    await runner.start()
    shop.images["bomb.png"] = files.long_png(1, 39_000_000)
    shop.images["wide.png"] = files.png(1001, 600)  # over this bridge's side limit
    shop.images["fine.png"] = files.png(1000, 600)
    owner = await new_seller("owner")
    await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {"name": "ACME", "members": [{"user_id": owner.user_id, "role": "owner"}]},
    )
    await marketplace.ok("PUT", "/buyers/b1", {"name": "Bob"})
    rooms = {}
    for name in ("bomb.png", "wide.png", "fine.png"):
        conversation = await marketplace.ok(
            "POST",
            "/conversations",
            {
                "seller_id": "acme",
                "buyer_id": "b1",
                "context": product(name, image_url=shop.url(name)),
            },
        )
        await owner.wait_until(lambda c=conversation: c["room_id"] in owner.invites, what="invite")
        await owner.accept_invite(conversation["room_id"])
        rooms[name] = conversation["room_id"]

    avatar = await owner.state(rooms["fine.png"], "m.room.avatar")
    downloaded = await owner.client.download(mxc=avatar["url"])
    assert isinstance(downloaded, nio.DownloadResponse), downloaded
    assert downloaded.body == shop.images["fine.png"]
    for name in ("bomb.png", "wide.png"):
        response = await owner.client.room_get_state_event(rooms[name], "m.room.avatar")
        assert isinstance(response, nio.RoomGetStateEventError), name
        assert response.status_code == "M_NOT_FOUND"
    assert {"/bomb.png", "/wide.png", "/fine.png"} <= set(shop.paths)
