"""The appservice API as the homeserver calls it: auth, transactions once, ping, queries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from bridge.matrix.transactions import transaction_key
from bridge.store.database import create_engine, migrate, sessions
from bridge.store.repository import SqlRepository
from tests.conftest import BridgeRunner, Homeserver
from tests.support.homeserver import Homeside, reply_event
from tests.support.journeys import open_conversation, seller_messages
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]


async def test_transactions_apply_once_also_across_a_restart(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    conversation = await open_conversation(marketplace, owner)
    conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]
    async with aiohttp.ClientSession() as session:
        home = Homeside(runner, session)
        status, answer = await home.transaction(
            "t1", [reply_event(room_id, owner.user_id, "$e1", "first")]
        )
        assert (status, answer) == (200, {})
        await bridge.transactions.wait_idle()
        assert await seller_messages(marketplace, conversation_id) == ["first"]

        await runner.stop(bridge)
        bridge = await runner.start()
        # The homeserver retries t1 (it never saw our 200): same id, same event, nothing new.
        status, _ = await home.transaction(
            "t1", [reply_event(room_id, owner.user_id, "$e1", "first")]
        )
        assert status == 200
        # The same event in another transaction is not a second message either.
        status, _ = await home.transaction(
            "t2", [reply_event(room_id, owner.user_id, "$e1", "first")]
        )
        assert status == 200
        await bridge.transactions.wait_idle()
        assert await seller_messages(marketplace, conversation_id) == ["first"]


async def test_a_stored_transaction_is_applied_after_a_crash(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    conversation = await open_conversation(marketplace, owner)
    await runner.stop(bridge)
    # What a crash between the 200 and applying the transaction leaves behind.
    engine = create_engine(runner.config.database)
    await migrate(engine)
    stored = await SqlRepository(sessions(engine)).store_transaction(
        "crash-1", [reply_event(conversation["room_id"], owner.user_id, "$crash", "after crash")]
    )
    await engine.dispose()
    assert stored
    bridge = await runner.start()
    await bridge.transactions.wait_idle()
    assert await seller_messages(marketplace, conversation["conversation_id"]) == ["after crash"]


async def test_wrong_or_missing_hs_token_is_refused_and_changes_nothing(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    conversation = await open_conversation(marketplace, owner)
    event = reply_event(conversation["room_id"], owner.user_id, "$forged", "forged")
    async with aiohttp.ClientSession() as session:
        home = Homeside(runner, session)
        status, error = await home.call(
            "PUT", "/_matrix/app/v1/transactions/f1", {"events": [event]}, token="wrong-token"
        )
        assert status == 403 and error["errcode"] == "M_FORBIDDEN"
        status, error = await home.call(
            "PUT", "/_matrix/app/v1/transactions/f2", {"events": [event]}, token=""
        )
        assert status == 401 and error["errcode"] == "M_UNAUTHORIZED"
        # With the right token, a body the bridge can't use is acknowledged (and skipped):
        # a refusal would make the homeserver retry it forever.
        status, answer = await home.call("PUT", "/_matrix/app/v1/transactions/f3", None)
        assert (status, answer) == (200, {})
        await bridge.transactions.wait_idle()
    assert await seller_messages(marketplace, conversation["conversation_id"]) == []
    for txn_id, events in (("f1", [event]), ("f2", [event]), ("f3", [])):
        key = transaction_key(txn_id, events)
        assert await bridge.repository.store_transaction(key, events), f"{txn_id} was kept"


async def test_queries_and_ping_answer_as_the_spec_says(
    homeserver: Homeserver,
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
) -> None:
    await runner.start()
    await marketplace.ok("PUT", "/buyers/Zoe", {"name": "Zoë"})
    observer = await new_seller("observer")
    async with aiohttp.ClientSession() as session:
        home = Homeside(runner, session)
        # A known buyer's ghost is made on demand, with the buyer's name.
        status, answer = await home.call("GET", "/_matrix/app/v1/users/@bazaar_shop__zoe:localhost")
        assert (status, answer) == (200, {})
        assert await observer.display_name("@bazaar_shop__zoe:localhost") == "Zoë"
        status, error = await home.call(
            "GET", "/_matrix/app/v1/users/@bazaar_shop_nobody:localhost"
        )
        assert status == 404 and error["errcode"] == "M_NOT_FOUND"
        status, error = await home.call(
            "GET", "/_matrix/app/v1/rooms/%23bazaar_shop_cnope:localhost"
        )
        assert status == 404 and error["errcode"] == "M_NOT_FOUND"
        status, answer = await home.call("POST", "/_matrix/app/v1/ping", {"transaction_id": "p1"})
        assert (status, answer) == (200, {})

        # The homeserver's own ping reaches the bridge through the registration's URL.
        # Synapse pools keep-alive connections to the bridge's address, where earlier
        # tests ran other bridges; a request that lands on such a closed connection
        # fails with M_CONNECTION_FAILED and the next one opens a fresh connection.
        for _attempt in range(3):
            async with session.post(
                f"{homeserver.synapse.address}/_matrix/client/v1/appservice/bazaar/ping",
                json={"transaction_id": "from-test"},
                headers={"Authorization": f"Bearer {homeserver.as_token}"},
            ) as response:
                status, body = response.status, await response.json()
            if body.get("errcode") != "M_CONNECTION_FAILED":
                break
        assert status == 200, body
        assert "duration_ms" in body


async def test_a_transaction_id_that_comes_again_with_other_events_is_applied_too(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    """Synapse repeats a transaction until it hears 200 (applied once); a Synapse on SQLite
    restarted numbers its transactions anew, so an old id may bring new events."""
    bridge = await runner.start()
    owner = await new_seller("owner")
    conversation = await open_conversation(marketplace, owner)
    first = reply_event(conversation["room_id"], owner.user_id, "$numbered-1", "first")
    second = reply_event(conversation["room_id"], owner.user_id, "$numbered-2", "second")
    async with aiohttp.ClientSession() as session:
        home = Homeside(runner, session)
        for events in ([first], [first], [second]):
            status, _ = await home.transaction("7", events)
            assert status == 200
        await bridge.transactions.wait_idle()
    assert await seller_messages(marketplace, conversation["conversation_id"]) == [
        "first",
        "second",
    ]
