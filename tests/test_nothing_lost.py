"""Nothing is lost and nothing arrives twice: messages wait in the store while the homeserver
or the bridge is down, and a send whose answer was lost is not repeated."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from bridge.config import Config
from tests.conftest import SITE, BridgeRunner, Homeserver, Sites
from tests.support import files
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.faults import FaultyPath
from tests.support.homeserver import Homeside, reply_event
from tests.support.journeys import joined_conversation, open_conversation
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.timeline import buyer_message_ids
from tests.support.waiting import eventually
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]


async def test_messages_wait_for_the_homeserver_and_arrive_in_order_after_a_bridge_restart(
    homeserver: Homeserver,
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
    sites: Sites,
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    conversation = await joined_conversation(marketplace, owner)
    conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]
    path = f"/conversations/{conversation_id}/messages"

    await homeserver.synapse.stop()
    try:
        texts = [f"question {n}" for n in range(1, 6)]
        for n, text in enumerate(texts[:3]):
            message = await marketplace.ok("POST", path, {"text": text, "client_id": f"c{n}"})
            assert message["status"] == "pending"
        # The bridge itself goes down and comes back while the homeserver is still away.
        await runner.stop(bridge)
        await runner.start()
        for n, text in enumerate(texts[3:], start=3):
            await marketplace.ok("POST", path, {"text": text, "client_id": f"c{n}"})
        # A file waits in the store too, and keeps its place in the line.
        buyer = BuyerClient(
            runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "Anna_K")
        )
        try:
            status, with_file = await buyer.upload(
                conversation_id, files.pdf(), "order.pdf", "c5", text="question 6"
            )
        finally:
            await buyer.close()
        assert (status, with_file["status"]) == (201, "pending")
        texts.append("question 6")
        # A repeat of an acknowledged message is not a new message.
        status, repeat = await marketplace.call("POST", path, {"text": texts[0], "client_id": "c0"})
        assert status == 200 and repeat["text"] == texts[0]
        listed = await marketplace.ok("GET", path)
        assert [m["status"] for m in listed["messages"]] == ["pending"] * 6
    finally:
        await homeserver.synapse.start()

    ghost_messages = await owner.wait_until(
        lambda: (
            found
            if len(
                found := [
                    m for m in owner.messages(room_id) if "io.bazaar.message_id" in m["content"]
                ]
            )
            >= 6
            else None
        ),
        within=60,
        what="all six questions",
    )
    assert [m["content"]["body"] for m in ghost_messages] == texts
    assert [m["content"]["msgtype"] for m in ghost_messages] == ["m.text"] * 5 + ["m.file"]
    assert ghost_messages[-1]["content"]["filename"] == "order.pdf"
    status, delivered = await owner.download(ghost_messages[-1]["content"]["url"])
    assert (status, delivered) == (200, files.pdf())

    sent = await webhooks.wait_for("message.status", count=6)
    assert {e["message"]["text"] for e in sent} == set(texts)
    assert all(e["message"]["status"] == "sent" for e in sent)
    listed = await marketplace.ok("GET", path)
    assert [m["status"] for m in listed["messages"]] == ["sent"] * 6
    # Webhooks are delivered at least once (a restart can repeat one); `id` tells repeats apart.
    created = webhooks.of_type("message.created")
    assert sorted({e["message"]["text"] for e in created}) == sorted(texts)
    assert len({e["id"] for e in created}) == 6


async def test_a_refused_message_fails_and_its_retry_delivers_it_once(
    homeserver: Homeserver,
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    conversation = await joined_conversation(marketplace, owner)
    conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]
    ghost = "@bazaar_shop__anna___k:localhost"
    path = f"/conversations/{conversation_id}/messages"

    async def as_appservice(action: str, body: dict[str, str], user: str | None) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{homeserver.synapse.address}/_matrix/client/v3/rooms/{room_id}/{action}",
                params={"user_id": user} if user else None,
                json=body,
                headers={"Authorization": f"Bearer {homeserver.as_token}"},
            ) as response,
        ):
            assert response.status == 200, await response.text()

    # Out of the room, the ghost's message is refused by the homeserver.
    await as_appservice("leave", {}, ghost)
    await marketplace.ok("POST", path, {"text": "Are you there?", "client_id": "r1"})
    failed = await eventually(
        lambda: _status(marketplace, path, "Are you there?"),
        what="the refused message marked failed",
    )
    assert failed == "failed"
    [refused] = (await marketplace.ok("GET", path))["messages"]
    assert refused["error"].startswith("The homeserver refused the message: M_FORBIDDEN")

    await as_appservice("invite", {"user_id": ghost}, None)
    await as_appservice("join", {}, ghost)
    status, retried = await marketplace.call(
        "POST", path, {"text": "Are you there?", "client_id": "r1"}
    )
    assert status == 200 and (retried["status"], retried["error"]) == ("pending", None)
    await owner.wait_until(
        lambda: [
            m for m in owner.messages(room_id) if m["content"].get("body") == "Are you there?"
        ],
        what="the retried message",
    )
    assert await eventually(lambda: _sent(marketplace, path)) == ["Are you there?"]
    await owner.sync_once()
    bodies = [m["content"].get("body") for m in owner.messages(room_id)]
    assert bodies.count("Are you there?") == 1


async def _status(marketplace: MarketplaceClient, path: str, text: str) -> str | None:
    listed = await marketplace.ok("GET", path)
    status = next(m["status"] for m in listed["messages"] if m["text"] == text)
    return status if status != "pending" else None


async def _sent(marketplace: MarketplaceClient, path: str) -> list[str]:
    listed = await marketplace.ok("GET", path)
    return [m["text"] for m in listed["messages"] if m["status"] == "sent"]


def _through(config: Config, proxy: FaultyPath) -> Config:
    """The same bridge, reaching its homeserver through the proxy."""
    return replace(config, homeserver=replace(config.homeserver, address=proxy.base))


async def _restart_synapse_once_answers_are_lost(homeserver: Homeserver, proxy: FaultyPath) -> None:
    """Synapse goes down with answers lost in flight, and comes back without the memory of
    the transaction ids it saw."""
    async with asyncio.timeout(60):
        await proxy.all_lost.wait()
    await homeserver.synapse.stop()
    await homeserver.synapse.start()
    proxy.release()


@pytest.mark.parametrize("bridge_restarts", [False, True], ids=["same-bridge", "bridge-restarts"])
async def test_a_send_whose_answer_was_lost_is_not_repeated_after_synapse_restarts(
    homeserver: Homeserver,
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
    bridge_restarts: bool,
) -> None:
    proxy = FaultyPath(homeserver.synapse.address)
    await proxy.start()
    try:
        runner.config = _through(runner.config, proxy)
        bridge = await runner.start()
        owner = await new_seller("owner")
        conversation = await joined_conversation(marketplace, owner)
        conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]
        path = f"/conversations/{conversation_id}/messages"

        proxy.lose_answers()
        first = await marketplace.ok("POST", path, {"text": "Still for sale?", "client_id": "l1"})
        if bridge_restarts:
            # The bridge goes down too before it can try again: the next run must know.
            async with asyncio.timeout(60):
                await proxy.all_lost.wait()
            await runner.stop(bridge)
        await _restart_synapse_once_answers_are_lost(homeserver, proxy)
        if bridge_restarts:
            await runner.start()

        second = await marketplace.ok("POST", path, {"text": "And the price?", "client_id": "l2"})
        await owner.wait_until(
            lambda: any(
                m["content"].get("io.bazaar.message_id") == second["message_id"]
                for m in owner.messages(room_id)
            ),
            within=60,
            what="the second question",
        )
        # Delivered in order, so once the second is in the room the first had its chance.
        assert await buyer_message_ids(owner, room_id) == [
            first["message_id"],
            second["message_id"],
        ]
        listed = await marketplace.ok("GET", path)
        assert [(m["text"], m["status"]) for m in listed["messages"]] == [
            ("Still for sale?", "sent"),
            ("And the price?", "sent"),
        ]
        sent = await webhooks.wait_for("message.status", count=2)
        assert {e["message"]["message_id"] for e in sent} == {
            first["message_id"],
            second["message_id"],
        }
    finally:
        await runner.stop_all()
        await proxy.stop()


async def test_a_burst_across_a_synapse_restart_lands_once_each_and_in_order(
    homeserver: Homeserver,
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
) -> None:
    rooms, before_stop, during_stop = 4, 25, 15
    proxy = FaultyPath(homeserver.synapse.address)
    await proxy.start()
    try:
        runner.config = _through(runner.config, proxy)
        await runner.start()
        owner = await new_seller("owner")
        conversations = [
            await open_conversation(marketplace, owner, buyer_id=f"burst-{n}") for n in range(rooms)
        ]
        room_ids = [conversation["room_id"] for conversation in conversations]
        await owner.wait_until(lambda: owner.invites.issuperset(room_ids), what="the invites")
        for room_id in room_ids:
            await owner.accept_invite(room_id)

        async def post(conversation: dict[str, str], numbers: range) -> None:
            path = f"/conversations/{conversation['conversation_id']}/messages"
            for n in numbers:
                await marketplace.ok("POST", path, {"text": f"burst {n}", "client_id": f"b{n}"})

        # Synapse goes down while every room has a send in flight (its 11th), each carried
        # out and its answer lost; more of the burst arrives while it is down.
        proxy.lose_answers(rooms, after=10)
        await asyncio.gather(*(post(c, range(before_stop)) for c in conversations))
        async with asyncio.timeout(60):
            await proxy.all_lost.wait()
        await homeserver.synapse.stop()
        try:
            await asyncio.gather(
                *(post(c, range(before_stop, before_stop + during_stop)) for c in conversations)
            )
        finally:
            await homeserver.synapse.start()
            proxy.release()

        total = before_stop + during_stop

        async def all_sent() -> list[list[str]] | None:
            listed = []
            for conversation in conversations:
                path = f"/conversations/{conversation['conversation_id']}/messages"
                messages = (await marketplace.ok("GET", path, params={"limit": "200"}))["messages"]
                if len(messages) != total or any(m["status"] != "sent" for m in messages):
                    return None
                listed.append([m["message_id"] for m in messages])
            return listed

        stored = await eventually(all_sent, within=90, what="the whole burst sent")
        for conversation, message_ids in zip(conversations, stored, strict=True):
            in_room = await buyer_message_ids(owner, conversation["room_id"])
            assert in_room == message_ids, (len(in_room), len(set(in_room)))
    finally:
        await runner.stop_all()
        await proxy.stop()


async def test_a_seller_reply_that_comes_while_the_homeserver_is_away_is_applied_once_it_is_back(
    homeserver: Homeserver,
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
) -> None:
    """Applying the reply needs the homeserver (the manager's display name): the bridge
    waits for it instead of dropping the reply."""
    await runner.start()
    owner, manager = await new_seller("owner"), await new_seller("manager")
    conversation = await open_conversation(marketplace, owner, manager=manager)
    room_id, conversation_id = conversation["room_id"], conversation["conversation_id"]
    text = "Yes, two left in stock."
    async with aiohttp.ClientSession() as session:
        home = Homeside(runner, session)
        await homeserver.synapse.stop()
        try:
            status, _ = await home.transaction(
                "away-1", [reply_event(room_id, manager.user_id, "$reply-while-away", text)]
            )
            assert status == 200
            # Long enough for the bridge to have tried while nothing answered.
            await asyncio.sleep(3)
        finally:
            await homeserver.synapse.start()

    async def replied() -> list[dict[str, Any]]:
        listed = await marketplace.ok("GET", f"/conversations/{conversation_id}/messages")
        return [m for m in listed["messages"] if m["sender"] == "seller"]

    seller_messages = await eventually(replied, within=90, what="the reply applied")
    assert [m["text"] for m in seller_messages] == [text]
