"""Every transaction Synapse can send is taken: a big one, a malformed one, odd text in it.

The homeserver retries a transaction it was refused, forever, and holds every later event
for every site behind it; so the bridge acknowledges what it can't use and skips it.
"""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tests.conftest import BridgeRunner
from tests.support.homeserver import Homeside, reply_event
from tests.support.journeys import joined_conversation, open_conversation, seller_messages
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse


class StandIn:
    """Stands in for the bridge on its appservice port: acknowledges the homeserver's
    transactions until one carries `marker`, which it answers only when released; every
    transaction after that it holds unanswered, noting its size."""

    def __init__(self, marker: bytes) -> None:
        self._marker = marker
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.marker_arrived = asyncio.Event()
        self.release_marker = asyncio.Event()
        self.held_sizes: asyncio.Queue[int] = asyncio.Queue()

    async def start(self, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            body = await reader.readexactly(length)
            if self.marker_arrived.is_set():
                await self.held_sizes.put(length)
                await reader.read(-1)
                return
            if self._marker in body:
                self.marker_arrived.set()
                await self.release_marker.wait()
                writer.close()
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            writer.write(b"Content-Length: 2\r\n\r\n{}")
            await writer.drain()

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


NewSeller = Callable[[str], Awaitable[SellerClient]]

# 60 KB of text in each reply (Matrix takes events up to 64 KiB); the bridge keeps the
# first 10,000 characters of a reply.
LONG_REPLY_CHARS = 30_000
KEPT_CHARS = 10_000


async def test_a_burst_of_long_replies_reaches_the_buyer_in_one_big_transaction(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    conversation = await joined_conversation(marketplace, owner)
    conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]

    # Synapse batches what queued up while a transaction was in flight: the seller's
    # replies, sent while a stand-in holds one, form the next transaction, far over 256 KB.
    # The stand-in holds that one too and drops it; Synapse keeps it and sends it again
    # once the bridge is back.
    await runner.stop(bridge)
    stand_in = StandIn(b"taken by the stand-in")
    await stand_in.start(runner.config.appservice.port)
    try:
        await owner.send_text(room_id, "taken by the stand-in")
        await asyncio.wait_for(stand_in.marker_arrived.wait(), 30)
        replies = [f"{n:02d} " + "ж" * LONG_REPLY_CHARS for n in range(12)]
        await asyncio.gather(*(owner.send_text(room_id, text) for text in replies))
        await asyncio.sleep(1)  # for Synapse to queue them all behind the one in flight
        stand_in.release_marker.set()
    finally:
        await stand_in.close()
    await runner.start()

    async def all_arrived() -> bool:
        arrived = await seller_messages(marketplace, conversation_id)
        return sorted(arrived) == sorted(
            ["taken by the stand-in", *(text[:KEPT_CHARS] for text in replies)]
        )

    await eventually(all_arrived, what="every long reply in the marketplace API", within=90)

    # Synapse did batch them (else this test would prove nothing).
    assert await largest_transaction_bytes(runner) > 256 * 1024

    # The path is not wedged: a reply after the burst arrives too.
    await owner.send_text(room_id, "after the burst")

    async def latest_arrived() -> bool:
        return (await seller_messages(marketplace, conversation_id))[-1:] == ["after the burst"]

    await eventually(latest_arrived, what="the reply after the burst")


async def largest_transaction_bytes(runner: BridgeRunner) -> int:
    path = runner.config.database.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as database:
        (size,) = database.execute(
            "SELECT max(length(CAST(events AS BLOB))) FROM appservice_transactions"
        ).fetchone()
    return int(size)


async def test_the_largest_transaction_synapse_sends_is_taken_whole(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    conversation = await open_conversation(marketplace, owner)
    conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]
    # 100 events of 42 KB (in UTF-8) as Synapse writes them, every character escaped, and as many
    # receipts beside them: over 12 MB.
    text = "ж" * 10_000
    events = [
        {
            **reply_event(room_id, owner.user_id, f"$big{n}", text),
            "unsigned": {"padding": "я" * 11_000},
        }
        for n in range(100)
    ]
    ephemeral = [
        {
            "type": "m.receipt",
            "room_id": room_id,
            "content": {f"$big{n}": {"m.read": {owner.user_id: {"ts": n}}}},
        }
        for n in range(100)
    ]
    body = json.dumps({"events": events, "ephemeral": ephemeral}, ensure_ascii=True).encode()
    assert len(body) > 12 * 1024 * 1024
    async with aiohttp.ClientSession() as session:
        home = Homeside(runner, session)
        async with session.put(
            f"{home.base}/_matrix/app/v1/transactions/big",
            data=io.BytesIO(body),
            headers={"Authorization": f"Bearer {home.token}", "Content-Type": "application/json"},
        ) as response:
            assert response.status == 200, await response.text()
    await bridge.transactions.wait_idle()
    listed = await marketplace.ok(
        "GET", f"/conversations/{conversation_id}/messages", params={"limit": "200"}
    )
    texts = [m["text"] for m in listed["messages"] if m["sender"] == "seller"]
    assert len(texts) == 100
    assert set(texts) == {text}


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"events": "not a list"}',
        b'{"events": [1, "two", null]}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=["not-json", "not-an-object", "events-not-a-list", "events-not-objects", "deep"],
)
async def test_a_transaction_the_bridge_cant_use_is_acknowledged_not_refused(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller, body: bytes
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    conversation = await open_conversation(marketplace, owner)
    async with aiohttp.ClientSession() as session:
        home = Homeside(runner, session)
        async with session.put(
            f"{home.base}/_matrix/app/v1/transactions/odd",
            data=body,
            headers={"Authorization": f"Bearer {home.token}", "Content-Type": "application/json"},
        ) as response:
            assert (response.status, await response.json()) == (200, {})
        # The next transaction is applied as usual.
        status, _ = await home.transaction(
            "next",
            [reply_event(conversation["room_id"], owner.user_id, "$after", "still here")],
        )
        assert status == 200
    await bridge.transactions.wait_idle()
    assert await seller_messages(marketplace, conversation["conversation_id"]) == ["still here"]


async def test_text_no_database_can_hold_is_mended_not_refused(
    runner_on_each_database: BridgeRunner, new_seller: NewSeller, sites: Any
) -> None:
    runner = runner_on_each_database
    bridge = await runner.start()
    marketplace = MarketplaceClient(runner.config.web.public_url, "shop", sites.api_token)
    try:
        owner = await new_seller("owner")
        conversation = await open_conversation(marketplace, owner)
        room_id = conversation["room_id"]
        # A lone surrogate and a NUL, as escapes: valid JSON that UTF-8 text columns and
        # PostgreSQL refuse.
        event = json.dumps(reply_event(room_id, owner.user_id, "$odd", "PLACEHOLDER"))
        raw = (
            '{"events": [' + event.replace("PLACEHOLDER", "half \\ud800 and nul \\u0000 end") + "]}"
        )
        async with aiohttp.ClientSession() as session:
            home = Homeside(runner, session)
            async with session.put(
                f"{home.base}/_matrix/app/v1/transactions/odd-text",
                data=raw.encode(),
                headers={
                    "Authorization": f"Bearer {home.token}",
                    "Content-Type": "application/json",
                },
            ) as response:
                assert response.status == 200
        await bridge.transactions.wait_idle()
        assert await seller_messages(marketplace, conversation["conversation_id"]) == [
            "half \ufffd and nul \ufffd end"
        ]
    finally:
        await marketplace.close()
