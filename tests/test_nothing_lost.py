"""Nothing is lost: messages wait in the store while the homeserver or the bridge is down."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from tests.conftest import SITE, BridgeRunner, Homeserver, Sites
from tests.support import files
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually
from tests.support.webhooks import WebhookReceiver
from tests.test_conversation_flow import open_conversation

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
    conversation = await open_conversation(marketplace, owner)
    conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]
    await owner.wait_until(lambda: room_id in owner.invites, what="the invite")
    await owner.accept_invite(room_id)
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
    conversation = await open_conversation(marketplace, owner)
    conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]
    await owner.wait_until(lambda: room_id in owner.invites, what="the invite")
    await owner.accept_invite(room_id)
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

    await as_appservice("invite", {"user_id": ghost}, None)
    await as_appservice("join", {}, ghost)
    status, retried = await marketplace.call(
        "POST", path, {"text": "Are you there?", "client_id": "r1"}
    )
    assert status == 200 and retried["status"] == "pending"
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
