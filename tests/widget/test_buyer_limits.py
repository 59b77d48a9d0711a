"""What one buyer may take of the bridge, through the real bridge and Synapse: open streams
(the oldest replaced, every frame to each of the others once and in order), downloads per
minute, a seller's file checked once, and uploads refused before their bytes are read."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from bridge.core.limits import Rate
from tests.conftest import SITE, BridgeRunner, Sites, product
from tests.support import files
from tests.support.buyer import BuyerClient, Stream, buyer_token
from tests.support.journeys import joined_conversation, open_conversation, with_seller
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]
# Only a guard against a test that would hang: what is asserted is who answered what.
ANSWER_WITHIN = 20.0


def _with_web(runner: BridgeRunner, **changes: Any) -> None:
    runner.config = replace(runner.config, web=replace(runner.config.web, **changes))


async def _frames_until(stream: Stream, kind: str, **match: Any) -> list[dict[str, Any]]:
    await stream.next_of(kind, **match)
    return list(stream.frames)


async def _close_of(stream: Stream) -> tuple[int, str]:
    """Read on until the server closes the stream; its close code and reason."""
    async with asyncio.timeout(ANSWER_WITHIN):
        while True:
            message = await stream.socket.receive()
            if message.type == aiohttp.WSMsgType.TEXT:
                stream.frames.append(json.loads(message.data))
                continue
            assert message.type == aiohttp.WSMsgType.CLOSE, message
            return int(message.data), str(message.extra)


async def test_a_buyers_oldest_stream_is_replaced_and_the_others_get_every_frame_once(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    _with_web(runner, max_streams_per_buyer=3)
    await runner.start()
    await with_seller(marketplace, await new_seller("owner"))
    anna = BuyerClient(runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "anna"))
    try:
        started = await anna.ok(
            "POST", "/conversations", {"seller_id": "acme", "context": product()}
        )
        path = f"/conversations/{started['conversation_id']}/messages"

        async def say(text: str) -> None:
            await anna.ok("POST", path, {"text": text, "client_id": text})

        await say("one")
        first = await anna.stream(since=0)
        seen = await _frames_until(first, "message.created", message__text="one")
        # Three tabs, each from where it stands: from the start, after the first frame, now.
        second = await anna.stream(since=seen[0]["seq"])
        third = await anna.stream()
        await say("two")
        for stream in (first, second, third):
            await stream.next_of("message.created", message__text="two")

        # A fourth tab: the first is closed, as replaced; the other three go on.
        fourth = await anna.stream(since=0)
        assert await _close_of(first) == (4000, "replaced")
        await say("three")
        for stream in (second, third, fourth):
            await stream.next_of("message.created", message__text="three")
        last = fourth.frames[-1]["seq"]
        await second.close()
        await third.close()

        everything = await anna.stream(since=0)
        await everything.next_of("message.created", message__text="three")
        stored = everything.frames

        def between(low: int, high: int) -> list[dict[str, Any]]:
            return [frame for frame in stored if low < frame["seq"] <= high]

        # Each tab got every stored frame after where it started, once and in order.
        assert first.frames == between(0, first.frames[-1]["seq"])
        assert second.frames == between(seen[0]["seq"], last)
        assert third.frames == between(third.frames[0]["seq"] - 1, last)
        assert fourth.frames == between(0, last)
        created = [f["message"]["text"] for f in third.frames if f["type"] == "message.created"]
        assert created == ["two", "three"]
    finally:
        await anna.close()


async def test_downloads_are_limited_per_buyer(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    _with_web(runner, downloads_per_minute=3)
    await runner.start()
    owner = await new_seller("owner")
    conversation_id = (await open_conversation(marketplace, owner))["conversation_id"]
    anna = BuyerClient(
        runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "Anna_K")
    )
    try:
        status, message = await anna.upload(conversation_id, files.png(), "a.png", "p1")
        assert status == 201, message
        attachment_id = message["attachments"][0]["attachment_id"]
        answers = [(await anna.fetch(conversation_id, attachment_id)) for _ in range(4)]
        assert [status for status, _, _ in answers] == [200, 200, 200, 429]
        refused = json.loads(answers[3][2])
        assert refused["errcode"] == "M_LIMIT_EXCEEDED" and refused["retry_after_ms"] > 0
        # The limit is the buyer's: the marketplace fetches the same file as before.
        async with marketplace.session.get(
            f"{marketplace.base}/conversations/{conversation_id}/attachments/{attachment_id}",
            headers={"Authorization": f"Bearer {sites.api_token}"},
        ) as response:
            assert response.status == 200
            assert await response.read() == answers[0][2]
    finally:
        await anna.close()


async def test_a_sellers_file_is_checked_once_and_keeps_the_type_found(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    conversation = await joined_conversation(marketplace, owner)
    room_id, conversation_id = conversation["room_id"], conversation["conversation_id"]
    page, invoice = files.html_named_png(), files.pdf()
    for data, mimetype, name in [(page, "image/png", "cat.png"), (invoice, "text/html", "bill")]:
        await owner.send(
            room_id,
            {
                "msgtype": "m.image" if mimetype.startswith("image/") else "m.file",
                "body": name,
                "url": await owner.upload(data, mimetype, name),
                "info": {"mimetype": mimetype, "size": len(data)},
            },
        )
    anna = BuyerClient(
        runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "Anna_K")
    )
    try:

        async def listed() -> list[dict[str, Any]]:
            answer = await anna.ok("GET", f"/conversations/{conversation_id}/messages")
            return [m["attachments"][0] for m in answer["messages"] if m["attachments"]]

        async def both() -> list[dict[str, Any]] | None:
            found = await listed()
            return found if len(found) == 2 else None

        claimed = await eventually(both, what="the seller's two files listed")
        # Before anyone asked for the bytes, the list can only say what the seller claimed.
        assert [a["content_type"] for a in claimed] == ["image/png", "text/html"]
        for attachment, data, checked in zip(
            claimed, (page, invoice), ("application/octet-stream", "application/pdf"), strict=True
        ):
            for _ in range(2):
                status, headers, body = await anna.fetch(
                    conversation_id, attachment["attachment_id"]
                )
                assert (status, headers["Content-Type"], body) == (200, checked, data)
                assert headers["Content-Disposition"].startswith("attachment;")
        # The type found in the bytes is kept with the file and said from then on.
        assert [a["content_type"] for a in await listed()] == [
            "application/octet-stream",
            "application/pdf",
        ]
    finally:
        await anna.close()


@dataclass
class HeldUpload:
    """A file upload over a plain socket that sends its headers and the start of its body,
    then holds the rest back: an answer that comes now came before the body was read."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    rest: bytes

    @classmethod
    async def start(
        cls, public_url: str, token: str, conversation_id: str, client_id: str, size: int
    ) -> HeldUpload:
        address = urlsplit(public_url)
        boundary = "bazaar-held-upload"
        head = (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="client_id"\r\n\r\n'
            f"{client_id}\r\n"
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="notes.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        data = (b"a plain line of notes\n" * (size // 22 + 1))[:size]
        body = head + data + f"\r\n--{boundary}--\r\n".encode()
        request = (
            f"POST /widget/v1/conversations/{conversation_id}/messages HTTP/1.1\r\n"
            f"Host: {address.netloc}\r\n"
            f"Authorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        sent = len(head) + 4096
        writer.write(request + body[:sent])
        await writer.drain()
        return cls(reader, writer, body[sent:])

    async def answer(self) -> tuple[int, dict[str, Any]]:
        async with asyncio.timeout(ANSWER_WITHIN):
            head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            status = int(head.split(" ", 2)[1])
            length = next(
                int(line.split(":", 1)[1])
                for line in head.split("\r\n")
                if line.lower().startswith("content-length:")
            )
            return status, json.loads(await self.reader.readexactly(length))

    async def send_rest(self) -> None:
        self.writer.write(self.rest)
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


HELD_SIZE = 4 * 1024 * 1024


async def test_an_upload_is_refused_before_its_body_is_read(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    runner.tuning = replace(runner.tuning, buyer_rates={"message": Rate(burst=2, per_second=0.001)})
    await runner.start()
    owner = await new_seller("owner")
    conversation_id = (await open_conversation(marketplace, owner))["conversation_id"]
    url = runner.config.web.public_url
    anna_token = buyer_token(sites.widget_secret, SITE, "Anna_K")
    boris_token = buyer_token(sites.widget_secret, SITE, "boris")
    anna = BuyerClient(url, anna_token)
    boris = BuyerClient(url, boris_token)
    held: list[HeldUpload] = []
    try:

        async def refused(token: str, conversation: str) -> tuple[int, str]:
            upload = await HeldUpload.start(url, token, conversation, "held", HELD_SIZE)
            held.append(upload)
            status, error = await upload.answer()
            return status, error["errcode"]

        assert await refused(anna_token, "c-no-such-conversation") == (
            404,
            "BAZAAR_UNKNOWN_CONVERSATION",
        )
        # Someone else's conversation looks the same as one that doesn't exist.
        assert await refused(boris_token, conversation_id) == (404, "BAZAAR_UNKNOWN_CONVERSATION")

        # Anna spends her two messages; a third, with a file, is refused at once.
        for n in range(2):
            await anna.ok(
                "POST",
                f"/conversations/{conversation_id}/messages",
                {"text": f"m{n}", "client_id": f"m{n}"},
            )
        assert await refused(anna_token, conversation_id) == (429, "M_LIMIT_EXCEEDED")

        # Blocked: refused before the file comes in too.
        await boris.ok("POST", "/conversations", {"seller_id": "acme", "context": product()})
        [boris_conversation] = (await boris.ok("GET", "/conversations"))["conversations"]
        boris_id = boris_conversation["conversation_id"]
        await boris.ok("POST", f"/conversations/{boris_id}/block")
        assert await refused(boris_token, boris_id) == (403, "BAZAAR_BLOCKED")
        listed = await marketplace.ok("GET", f"/conversations/{conversation_id}/messages")
        assert [m["text"] for m in listed["messages"]] == ["m0", "m1"]
    finally:
        for upload in held:
            await upload.close()
        await anna.close()
        await boris.close()


async def test_a_buyer_sends_at_most_two_files_at_once(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    conversation_id = (await open_conversation(marketplace, owner))["conversation_id"]
    url = runner.config.web.public_url
    token = buyer_token(sites.widget_secret, SITE, "Anna_K")
    uploads = await asyncio.gather(
        *(HeldUpload.start(url, token, conversation_id, f"f{n}", HELD_SIZE) for n in range(3))
    )
    anna = BuyerClient(url, token)
    try:
        answers = {asyncio.ensure_future(upload.answer()): upload for upload in uploads}
        done, waiting = await asyncio.wait(
            answers, timeout=ANSWER_WITHIN, return_when=asyncio.FIRST_COMPLETED
        )
        # Which of the three came last is up to the network; exactly one is refused, while
        # the other two are still arriving.
        assert len(done) == 1 and len(waiting) == 2
        status, error = done.pop().result()
        assert (status, error["errcode"]) == (429, "BAZAAR_TOO_MANY_UPLOADS")
        finished = []
        for task in waiting:
            await answers[task].send_rest()
            finished.append(await task)
        assert [status for status, _ in finished] == [201, 201], finished
        # Their places are free again: the file refused a moment ago goes now.
        status, message = await anna.upload(conversation_id, files.text_file(), "later.txt", "f9")
        assert status == 201, message
        listed = await marketplace.ok("GET", f"/conversations/{conversation_id}/messages")
        assert sorted(m["client_id"] for m in listed["messages"]) == sorted(
            [message["client_id"] for _, message in finished] + ["f9"]
        )
    finally:
        for upload in uploads:
            await upload.close()
        await anna.close()
