"""Request bodies as hostile callers send them: in pieces, cut short, trickled, malformed.

A raw socket client writes the bytes exactly as the test says, so what TCP delivers in
one read and what arrives later is under the test's control.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from typing import Any

import pytest

from tests.conftest import SITE, BridgeRunner, Sites
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.marketplace import MarketplaceClient

pytestmark = pytest.mark.synapse


class RawClient:
    """One HTTP/1.1 request over a plain socket, written in the pieces the test gives."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def send(
        self,
        method: str,
        path: str,
        pieces: list[bytes],
        *,
        headers: dict[str, str],
        pause: float = 0.3,
        length: int | None = None,
        close_after: bool = False,
    ) -> tuple[int, Any]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            total = sum(len(piece) for piece in pieces) if length is None else length
            head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {total}\r\n"
            head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            writer.write(head.encode() + b"\r\n")
            for index, piece in enumerate(pieces):
                if index:
                    await asyncio.sleep(pause)
                writer.write(piece)
                await writer.drain()
            if close_after:
                writer.write_eof()
            return await read_response(reader)
        finally:
            writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, Any]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    body = await reader.readexactly(length)
    return status, json.loads(body) if body else None


def web_port(runner: BridgeRunner) -> int:
    return runner.config.web.port


def api_headers(sites: Sites) -> dict[str, str]:
    return {"Authorization": f"Bearer {sites.api_token}", "Content-Type": "application/json"}


def halves(body: bytes) -> list[bytes]:
    return [body[: len(body) // 2], body[len(body) // 2 :]]


@pytest.mark.parametrize("size", [18_000, 60_000])
async def test_a_json_body_in_two_tcp_writes_is_read_whole_on_the_marketplace_api(
    runner: BridgeRunner, marketplace: MarketplaceClient, sites: Sites, size: int
) -> None:
    await runner.start()
    body = json.dumps({"name": "ACME", "padding": "x" * size}).encode()
    status, answer = await RawClient(web_port(runner)).send(
        "PUT", f"/api/v1/sites/{SITE}/sellers/acme", halves(body), headers=api_headers(sites)
    )
    assert status == 200, answer
    assert (await marketplace.ok("GET", "/sellers/acme"))["name"] == "ACME"


async def test_a_json_body_in_two_tcp_writes_is_read_whole_on_the_widget_api(
    runner: BridgeRunner, marketplace: MarketplaceClient, sites: Sites
) -> None:
    await runner.start()
    await marketplace.ok("PUT", "/sellers/acme", {"name": "ACME", "language": "en"})
    token = buyer_token(sites.widget_secret, SITE, "anna")
    title = "Kettle " + "k" * 400
    body = json.dumps(
        {
            "seller_id": "acme",
            "context": {"type": "product", "id": "kettle-1", "title": title[:200]},
            "padding": "x" * 60_000,
        }
    ).encode()
    status, answer = await RawClient(web_port(runner)).send(
        "POST",
        "/widget/v1/conversations",
        halves(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert status == 201, answer
    buyer = BuyerClient(runner.config.web.public_url, token)
    try:
        listed = await buyer.ok("GET", "/conversations")
    finally:
        await buyer.close()
    assert [c["context"]["title"] for c in listed["conversations"]] == [title[:200]]


@pytest.mark.parametrize("hang_up", [True, False], ids=["client-hangs-up", "client-waits"])
async def test_a_body_shorter_than_its_content_length_is_refused_and_nothing_is_stored(
    runner: BridgeRunner, marketplace: MarketplaceClient, sites: Sites, hang_up: bool
) -> None:
    runner.config = replace(runner.config, web=replace(runner.config.web, body_timeout_seconds=1))
    await runner.start()
    body = json.dumps({"name": "ACME"}).encode()
    # The JSON that arrived parses; the rest never comes. The client closes its side (the
    # bridge may answer 400 or just hang up) or waits (the deadline answers): either way
    # what arrived must not be used.
    try:
        status, answer = await RawClient(web_port(runner)).send(
            "PUT",
            f"/api/v1/sites/{SITE}/sellers/acme",
            [body],
            headers=api_headers(sites),
            length=len(body) + 40,
            close_after=hang_up,
        )
    except asyncio.IncompleteReadError:
        assert hang_up  # closed without an answer
    else:
        expected = (400, "BAZAAR_BODY_INTERRUPTED") if hang_up else (408, "BAZAAR_BODY_TIMEOUT")
        assert (status, answer["errcode"]) == expected
    status, answer = await marketplace.call("GET", "/sellers/acme")
    assert (status, answer["errcode"]) == (404, "BAZAAR_UNKNOWN_SELLER")


async def test_a_body_that_trickles_past_the_deadline_is_refused(
    runner: BridgeRunner, marketplace: MarketplaceClient, sites: Sites
) -> None:
    runner.config = replace(runner.config, web=replace(runner.config.web, body_timeout_seconds=1))
    await runner.start()
    body = json.dumps({"name": "ACME"}).encode()
    pieces = [bytes([byte]) for byte in body]
    # A byte every 0.3 s: the whole body would take several seconds, the deadline is one.
    status, answer = await RawClient(web_port(runner)).send(
        "PUT",
        f"/api/v1/sites/{SITE}/sellers/acme",
        pieces,
        headers=api_headers(sites),
    )
    assert (status, answer["errcode"]) == (408, "BAZAAR_BODY_TIMEOUT")
    status, answer = await marketplace.call("GET", "/sellers/acme")
    assert status == 404


@pytest.mark.parametrize(
    ("raw", "errcode"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "M_NOT_JSON"),
        (b'{"name": "half \\ud800 of a pair"}', "M_NOT_JSON"),
        (b'{"name": "nul \\u0000 inside"}', "M_NOT_JSON"),
        (b'{"name": "half\xed\xa0\x80"}', "M_NOT_JSON"),
    ],
    ids=["nested-100000-deep", "lone-surrogate", "nul", "raw-surrogate-bytes"],
)
async def test_json_no_store_can_hold_is_refused_with_400(
    runner: BridgeRunner, marketplace: MarketplaceClient, raw: bytes, errcode: str
) -> None:
    await runner.start()
    status, answer = await marketplace.call("PUT", "/sellers/acme", raw=raw)
    assert (status, answer["errcode"]) == (400, errcode), answer
    status, answer = await marketplace.call("PUT", "/buyers/anna", raw=raw)
    assert (status, answer["errcode"]) == (400, errcode), answer
    status, _ = await marketplace.call("GET", "/sellers/acme")
    assert status == 404


async def test_a_pair_of_surrogates_is_an_emoji_and_is_kept(
    runner: BridgeRunner, marketplace: MarketplaceClient
) -> None:
    await runner.start()
    await marketplace.ok("PUT", "/sellers/acme", raw=b'{"name": "Kettles \\ud83d\\ude00"}')
    assert (await marketplace.ok("GET", "/sellers/acme"))["name"] == "Kettles \U0001f600"


@pytest.mark.parametrize("value", ["²", "٣", "5" * 5000, "1" * 20, "-1", "1e3"])
async def test_counts_in_the_query_are_ascii_digits_of_a_sane_length(
    runner: BridgeRunner, marketplace: MarketplaceClient, sites: Sites, value: str
) -> None:
    await runner.start()
    await marketplace.ok("PUT", "/sellers/acme", {"name": "ACME"})
    await marketplace.ok("PUT", "/buyers/anna", {"name": "Anna"})
    conversation = await marketplace.ok(
        "POST",
        "/conversations",
        {"seller_id": "acme", "buyer_id": "anna", "context": {"type": "general", "id": "q"}}
        | {"context": {"type": "general", "id": "q", "title": "Question"}},
    )
    path = f"/conversations/{conversation['conversation_id']}/messages"
    status, answer = await marketplace.call("GET", path, params={"limit": value})
    assert (status, answer["errcode"]) == (400, "M_INVALID_PARAM"), answer
    buyer = BuyerClient(
        runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "anna")
    )
    try:
        status, answer = await buyer.call(
            "GET", f"/conversations/{conversation['conversation_id']}/messages?limit={value}"
        )
        assert (status, answer["errcode"]) == (400, "M_INVALID_PARAM"), answer
        status, answer = await buyer.call("GET", f"/stream?since={value}")
        assert (status, answer["errcode"]) == (400, "M_INVALID_PARAM"), answer
    finally:
        await buyer.close()


async def test_an_unknown_site_is_named_only_to_a_caller_with_a_valid_token(
    runner: BridgeRunner, sites: Sites
) -> None:
    await runner.start()
    stranger = MarketplaceClient(runner.config.web.public_url, "nosuchsite", "not-a-token")
    try:
        status, answer = await stranger.call("GET", "/conversations")
        assert (status, answer["errcode"]) == (401, "M_UNKNOWN_TOKEN")
        status, answer = await stranger.call("GET", "/conversations", token="")
        assert (status, answer["errcode"]) == (401, "M_MISSING_TOKEN")
        status, answer = await stranger.call("GET", "/conversations", token=sites.api_token)
        assert (status, answer["errcode"]) == (404, "BAZAAR_UNKNOWN_SITE")
    finally:
        await stranger.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"PUT /api/v1/sites/shop/sellers/a HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"PUT /api/v1/sites/shop/sellers/a HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"GET /api/v1/sites/shop/conversations HTTP/1.1\r\nHost: x\r\nX-Big: "
        + b"a" * 100_000
        + b"\r\n\r\n",
        "GET /api/v1/sites/shop/caf\u00e9 HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    ],
    ids=["duplicate-content-length", "negative-content-length", "100kb-header", "raw-utf8-path"],
)
async def test_malformed_http_is_answered_400_and_logged_without_a_traceback(
    runner: BridgeRunner, caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    await runner.start()
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection("127.0.0.1", web_port(runner))
    try:
        writer.write(request_bytes)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n"), 30)
    finally:
        writer.close()
    assert head.split(b" ")[1] == b"400", head
    loud = [
        record
        for record in caplog.records
        if record.levelno >= logging.WARNING or record.exc_info is not None
    ]
    assert loud == [], [record.getMessage() for record in loud]
    assert any("Error handling request" in record.getMessage() for record in caplog.records)


def multipart(parts: list[tuple[str, bytes]], boundary: str = "bazaarboundary") -> bytes:
    """A multipart/form-data body from (part headers, part body) pairs, as given."""
    body = b""
    for headers, content in parts:
        body += f"--{boundary}\r\n".encode() + headers.encode("utf-8") + b"\r\n\r\n"
        body += content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


async def open_buyer_conversation(
    marketplace: MarketplaceClient, sites: Sites, runner: BridgeRunner
) -> tuple[str, str]:
    await marketplace.ok("PUT", "/sellers/acme", {"name": "ACME"})
    await marketplace.ok("PUT", "/buyers/anna", {"name": "Anna"})
    conversation = await marketplace.ok(
        "POST",
        "/conversations",
        {
            "seller_id": "acme",
            "buyer_id": "anna",
            "context": {"type": "general", "id": "q", "title": "Question"},
        },
    )
    return conversation["conversation_id"], buyer_token(sites.widget_secret, SITE, "anna")


def file_part(disposition: str) -> tuple[str, bytes]:
    return (f"Content-Disposition: {disposition}\r\nContent-Type: text/plain", b"price list\n")


async def test_a_file_name_with_nul_or_line_breaks_is_kept_without_them(
    runner: BridgeRunner, marketplace: MarketplaceClient, sites: Sites
) -> None:
    await runner.start()
    conversation_id, token = await open_buyer_conversation(marketplace, sites, runner)
    path = f"/widget/v1/conversations/{conversation_id}/messages"
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "multipart/form-data; boundary=bazaarboundary",
    }
    client_id = ('Content-Disposition: form-data; name="client_id"', b"c1")
    # Raw, they break the part's header: a malformed form.
    for raw_name in ("list\x00.txt", "list\r\nX-Evil: 1.txt"):
        body = multipart([client_id, file_part(f'form-data; name="file"; filename="{raw_name}"')])
        status, answer = await RawClient(web_port(runner)).send(
            "POST", path, [body], headers=headers
        )
        assert (status, answer["errcode"]) == (400, "M_INVALID_PARAM"), answer
    # Percent-encoded (RFC 5987), they decode into the name: the bridge drops them.
    body = multipart(
        [
            client_id,
            file_part("form-data; name=\"file\"; filename*=UTF-8''list%00%0D%0AX-Evil%3A%201.txt"),
        ]
    )
    status, message = await RawClient(web_port(runner)).send("POST", path, [body], headers=headers)
    assert status == 201, message
    (attachment,) = message["attachments"]
    assert attachment["name"] == "listX-Evil_ 1.txt"  # and ":" is no file name character
    buyer = BuyerClient(runner.config.web.public_url, token)
    try:
        async with buyer.session.get(
            f"{buyer.base}/conversations/{conversation_id}/attachments/"
            f"{attachment['attachment_id']}",
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            assert response.status == 200
            assert "X-Evil" not in response.headers
            assert await response.read() == b"price list\n"
    finally:
        await buyer.close()


async def test_a_part_header_of_two_megabytes_is_refused_with_400(
    runner: BridgeRunner, marketplace: MarketplaceClient, sites: Sites
) -> None:
    await runner.start()
    conversation_id, token = await open_buyer_conversation(marketplace, sites, runner)
    body = multipart(
        [
            ('Content-Disposition: form-data; name="client_id"', b"c1"),
            (
                'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n'
                "X-Padding: " + "p" * (2 * 1024 * 1024),
                b"hello\n",
            ),
        ]
    )
    status, answer = await RawClient(web_port(runner)).send(
        "POST",
        f"/widget/v1/conversations/{conversation_id}/messages",
        [body],
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "multipart/form-data; boundary=bazaarboundary",
        },
    )
    assert (status, answer["errcode"]) == (400, "M_INVALID_PARAM"), answer
    listed = await marketplace.ok("GET", f"/conversations/{conversation_id}/messages")
    assert listed["messages"] == []


async def test_the_homeserver_asking_for_a_ghost_with_broken_escapes_gets_404(
    runner: BridgeRunner,
) -> None:
    await runner.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", runner.config.appservice.port)
    try:
        writer.write(
            f"GET /_matrix/app/v1/users/@bazaar_{SITE}_=ff:localhost HTTP/1.1\r\n"
            f"Host: x\r\nAuthorization: Bearer {runner.config.appservice.hs_token}\r\n\r\n".encode()
        )
        status, answer = await read_response(reader)
    finally:
        writer.close()
    assert (status, answer["errcode"]) == (404, "M_NOT_FOUND")
