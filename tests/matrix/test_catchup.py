"""A seller's reply the homeserver never pushed still reaches the buyer: the bridge finds it
in the room once the homeserver is back, or when the bridge starts, and relays it once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from bridge.app import Bridge
from bridge.demo.synapse import free_port
from bridge.store.schema import TransactionRow
from tests.conftest import BridgeRunner, Homeserver
from tests.support.journeys import joined_conversation
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually
from tests.support.withholding import WithholdingPath

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]


@pytest_asyncio.fixture(loop_scope="session")
async def withholding(
    homeserver: Homeserver, runner: BridgeRunner
) -> AsyncIterator[WithholdingPath]:
    """The bridge's appservice moves to a port of its own; the path takes the one Synapse
    calls."""
    bridge_port = free_port()
    config = runner.config
    runner.config = replace(config, appservice=replace(config.appservice, port=bridge_port))
    path = WithholdingPath(homeserver.appservice_port, bridge_port)
    await path.start()
    yield path
    await runner.stop_all()
    await path.stop()


async def _seller_texts(marketplace: MarketplaceClient, path: str) -> list[str]:
    listed = await marketplace.ok("GET", path)
    return [m["text"] for m in listed["messages"] if m["sender"] == "seller"]


async def _seller_texts_once(
    marketplace: MarketplaceClient, path: str, count: int, what: str
) -> list[str]:
    """The seller's messages in the conversation, once there are `count` of them."""

    async def enough() -> list[str] | None:
        texts = await _seller_texts(marketplace, path)
        return texts if len(texts) >= count else None

    found = await eventually(enough, what=what)
    assert found is not None
    return found


async def _withheld_reply(
    bridge: Bridge,
    withholding: WithholdingPath,
    owner: SellerClient,
    room_id: str,
    text: str,
) -> dict[str, Any]:
    """The owner's reply, which Synapse pushes and the bridge never gets."""
    await asyncio.wait_for(bridge.catchup.watching.wait(), 45)
    withholding.withhold(owner.user_id)
    event_id = await owner.send_text(room_id, text)

    async def pushed() -> bool:
        return any(e.get("event_id") == event_id for e in withholding.withheld)

    await eventually(pushed, what="Synapse pushing the reply")
    withholding.withhold(None)
    return next(e for e in withholding.withheld if e["event_id"] == event_id)


async def test_a_reply_the_homeserver_never_pushed_reaches_the_buyer_after_it_restarts(
    homeserver: Homeserver,
    runner: BridgeRunner,
    withholding: WithholdingPath,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    conversation = await joined_conversation(marketplace, owner)
    path = f"/conversations/{conversation['conversation_id']}/messages"
    await _withheld_reply(bridge, withholding, owner, conversation["room_id"], "Yes, in stock")
    # The bridge has not heard of it: no transaction brought it.
    await owner.send_text(conversation["room_id"], "Shipping is free")
    assert await _seller_texts_once(marketplace, path, 1, "the next reply") == ["Shipping is free"]

    await homeserver.synapse.stop()
    await homeserver.synapse.start()

    texts = await _seller_texts_once(marketplace, path, 2, "the withheld reply")
    assert sorted(texts) == ["Shipping is free", "Yes, in stock"]
    # Once: a later transaction, or another sweep, adds nothing.
    await owner.send_text(conversation["room_id"], "Anything else?")
    texts = await _seller_texts_once(marketplace, path, 3, "the last reply")
    assert texts[-1] == "Anything else?" and texts.count("Yes, in stock") == 1


async def test_a_reply_the_homeserver_never_pushed_reaches_the_buyer_when_the_bridge_starts(
    runner: BridgeRunner,
    withholding: WithholdingPath,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    conversation = await joined_conversation(marketplace, owner)
    path = f"/conversations/{conversation['conversation_id']}/messages"
    await marketplace.ok("POST", path, {"text": "Is it in stock?", "client_id": "q1"})
    await _withheld_reply(bridge, withholding, owner, conversation["room_id"], "Yes, in stock")
    await runner.stop(bridge)
    assert withholding.withheld_sender is None

    await runner.start()
    texts = await _seller_texts_once(marketplace, path, 1, "the withheld reply")
    assert texts == ["Yes, in stock"]
    # The bridge's own messages, which it sent itself, are not taken for new ones.
    listed = await marketplace.ok("GET", path)
    assert [m["text"] for m in listed["messages"]] == ["Is it in stock?", "Yes, in stock"]


async def test_the_bridge_forgets_transactions_applied_more_than_a_day_ago(
    runner: BridgeRunner,
) -> None:
    bridge = await runner.start()
    await asyncio.wait_for(bridge.catchup.watching.wait(), 45)
    await bridge.repository.store_transaction("old", [{"event_id": "$old"}])
    await bridge.repository.store_transaction("recent", [{"event_id": "$recent"}])
    for txn_id in ("old", "recent"):
        await bridge.repository.mark_transaction_processed(txn_id)
    await runner.stop(bridge)
    engine = create_async_engine(runner.config.database)
    async with engine.begin() as connection:
        await connection.execute(
            update(TransactionRow)
            .where(TransactionRow.txn_id == "old")
            .values(processed_at=datetime.now(UTC) - timedelta(days=2))
        )
    await engine.dispose()

    bridge = await runner.start()
    await asyncio.wait_for(bridge.catchup.watching.wait(), 45)

    async def forgotten() -> set[str] | None:
        seen = await bridge.repository.event_ids_received_since(datetime.min.replace(tzinfo=UTC))
        return seen if "$old" not in seen else None

    assert "$recent" in await eventually(forgotten, what="the old transaction forgotten")
