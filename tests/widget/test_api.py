"""The buyer API against a real bridge and Synapse: auth, isolation, limits, stream, receipts."""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import nio
import pytest

from bridge.core.limits import Rate
from tests.conftest import FAST, OTHER_SITE, SITE, BridgeRunner, Sites, _runner, product
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.journeys import with_seller
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]
SHOP_ORIGIN = "https://shop.example"


async def test_tokens_are_checked(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    url = runner.config.web.public_url
    bad = [
        ("", 401, "M_MISSING_TOKEN"),
        ("not.a.jwt", 401, "M_UNKNOWN_TOKEN"),
        (buyer_token("wrong-secret-" * 4, SITE, "anna"), 401, "M_UNKNOWN_TOKEN"),
        (buyer_token(sites.widget_secret, SITE, "anna", expires_in=-10), 401, "M_UNKNOWN_TOKEN"),
        (buyer_token(sites.widget_secret, "nosite", "anna"), 401, "M_UNKNOWN_TOKEN"),
        # Signed with this site's secret but claiming another site.
        (buyer_token(sites.widget_secret, OTHER_SITE, "anna"), 401, "M_UNKNOWN_TOKEN"),
    ]
    for token, status, errcode in bad:
        client = BuyerClient(url, token)
        try:
            answer_status, error = await client.call("GET", "/conversations")
        finally:
            await client.close()
        assert (answer_status, error["errcode"]) == (status, errcode), token
    client = BuyerClient(url, buyer_token(sites.widget_secret, SITE, "anna"))
    try:
        assert await client.ok("GET", "/conversations") == {
            "conversations": [],
            "unread_total": 0,
            "max_upload_bytes": 20 * 1024 * 1024,
        }
    finally:
        await client.close()


async def test_a_buyer_sees_only_their_own_conversations(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    await with_seller(marketplace, owner)
    url = runner.config.web.public_url
    anna = BuyerClient(url, buyer_token(sites.widget_secret, SITE, "anna", name="Anna"))
    boris = BuyerClient(url, buyer_token(sites.widget_secret, SITE, "boris", name="Boris"))
    try:
        status, started = await anna.call(
            "POST", "/conversations", {"seller_id": "acme", "context": product()}
        )
        assert status == 201
        assert (started["seller_name"], started["unread"], started["state"]) == (
            "ACME",
            0,
            "active",
        )
        conversation_id = started["conversation_id"]
        status, again = await anna.call(
            "POST", "/conversations", {"seller_id": "acme", "context": product()}
        )
        assert status == 200 and again["conversation_id"] == conversation_id
        await anna.ok(
            "POST", f"/conversations/{conversation_id}/messages", {"text": "Hi", "client_id": "a1"}
        )
        for method, path, body in [
            ("GET", f"/conversations/{conversation_id}/messages", None),
            (
                "POST",
                f"/conversations/{conversation_id}/messages",
                {"text": "x", "client_id": "b1"},
            ),
            ("POST", f"/conversations/{conversation_id}/typing", {"typing": True}),
        ]:
            status, error = await boris.call(method, path, body)
            assert (status, error["errcode"]) == (404, "BAZAAR_UNKNOWN_CONVERSATION")
        assert (await boris.ok("GET", "/conversations"))["conversations"] == []
        listed = await anna.ok("GET", "/conversations")
        assert [c["conversation_id"] for c in listed["conversations"]] == [conversation_id]
        assert listed["conversations"][0]["last_message"]["text"] == "Hi"

        # The marketplace sees the buyer the token introduced.
        buyers = await marketplace.ok("GET", "/conversations", params={"buyer_id": "anna"})
        assert len(buyers["conversations"]) == 1
    finally:
        await anna.close()
        await boris.close()


async def test_bad_input_is_refused(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    await with_seller(marketplace, owner)
    await marketplace.ok("PUT", "/sellers/closed", {"name": "Closed", "chat_enabled": False})
    anna = BuyerClient(runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "anna"))
    try:
        started = await anna.ok(
            "POST", "/conversations", {"seller_id": "acme", "context": product()}
        )
        path = f"/conversations/{started['conversation_id']}/messages"
        cases = [
            ("POST", path, {"text": "x" * 10_001, "client_id": "big"}, 413, "M_TOO_LARGE"),
            ("POST", path, {"text": "hi"}, 400, "M_MISSING_PARAM"),
            (
                "POST",
                "/conversations",
                {"seller_id": "nobody", "context": product()},
                404,
                "BAZAAR_UNKNOWN_SELLER",
            ),
            (
                "POST",
                "/conversations",
                {"seller_id": "closed", "context": product()},
                403,
                "BAZAAR_CHAT_DISABLED",
            ),
            ("POST", "/conversations", {"seller_id": "acme"}, 400, "M_MISSING_PARAM"),
            (
                "POST",
                f"/conversations/{started['conversation_id']}/read",
                {"up_to": "mnope"},
                404,
                "BAZAAR_UNKNOWN_MESSAGE",
            ),
            (
                "POST",
                f"/conversations/{started['conversation_id']}/typing",
                {"typing": "yes"},
                400,
                "M_INVALID_PARAM",
            ),
        ]
        for method, target, body, status, errcode in cases:
            answer_status, error = await anna.call(method, target, body)
            assert (answer_status, error["errcode"]) == (status, errcode), (target, body, error)
        assert (await anna.ok("GET", path))["messages"] == []
    finally:
        await anna.close()


async def test_a_flood_of_messages_gets_429(
    homeserver: Any,
    sqlite_url: str,
    sites: Sites,
    webhooks: Any,
    new_seller: NewSeller,
    tmp_path: Path,
) -> None:
    runner = _runner(homeserver, sqlite_url, sites, webhooks, tmp_path / "media")
    runner.tuning = replace(
        FAST,
        buyer_rates={
            "message": Rate(burst=3, per_second=0.01),
            "conversation": Rate(burst=5, per_second=1),
            "typing": Rate(burst=5, per_second=1),
            "read": Rate(burst=5, per_second=1),
        },
    )
    await runner.start()
    marketplace = MarketplaceClient(runner.config.web.public_url, SITE, sites.api_token)
    anna = BuyerClient(runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "anna"))
    try:
        owner = await new_seller("owner")
        await with_seller(marketplace, owner)
        started = await anna.ok(
            "POST", "/conversations", {"seller_id": "acme", "context": product()}
        )
        path = f"/conversations/{started['conversation_id']}/messages"
        answers = [
            await anna.call("POST", path, {"text": f"m{n}", "client_id": f"f{n}"}) for n in range(6)
        ]
        assert [status for status, _ in answers] == [201, 201, 201, 429, 429, 429]
        limited = answers[3][1]
        assert limited["errcode"] == "M_LIMIT_EXCEEDED" and limited["retry_after_ms"] > 0
        assert [m["text"] for m in (await anna.ok("GET", path))["messages"]] == ["m0", "m1", "m2"]
        # Another buyer is not held back by Anna's flood.
        boris = BuyerClient(
            runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "boris")
        )
        try:
            other = await boris.ok(
                "POST", "/conversations", {"seller_id": "acme", "context": product()}
            )
            status, _ = await boris.call(
                "POST",
                f"/conversations/{other['conversation_id']}/messages",
                {"text": "hi", "client_id": "b"},
            )
            assert status == 201
        finally:
            await boris.close()
    finally:
        await anna.close()
        await marketplace.close()
        await runner.stop_all()


async def test_cors_only_for_the_sites_origins(runner: BridgeRunner, sites: Sites) -> None:
    runner.config = _with_origins(runner, [SHOP_ORIGIN])
    await runner.start()
    base = f"{runner.config.web.public_url}/widget/v1/conversations"
    async with aiohttp.ClientSession() as session:
        preflight = {"Origin": SHOP_ORIGIN, "Access-Control-Request-Method": "POST"}
        async with session.options(base, headers=preflight) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == SHOP_ORIGIN
            assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
        async with session.options(
            base, headers={**preflight, "Origin": "https://evil.example"}
        ) as response:
            assert response.status == 403
            assert "Access-Control-Allow-Origin" not in response.headers
        token = buyer_token(sites.widget_secret, SITE, "anna")
        async with session.get(
            base, headers={"Origin": SHOP_ORIGIN, "Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == SHOP_ORIGIN
        async with session.get(
            base, headers={"Origin": "https://evil.example", "Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 403
            assert (await response.json())["errcode"] == "BAZAAR_ORIGIN_NOT_ALLOWED"


def _with_origins(runner: BridgeRunner, origins: list[str]) -> Any:
    sites = tuple(replace(site, allowed_origins=tuple(origins)) for site in runner.config.sites)
    return replace(runner.config, sites=sites)


async def test_stream_delivers_replies_receipts_and_typing_and_resumes(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    await with_seller(marketplace, owner)
    ghost = "@bazaar_shop_anna:localhost"
    anna = BuyerClient(
        runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "anna", name="Anna")
    )
    try:
        stream = await anna.stream()
        started = await anna.ok(
            "POST", "/conversations", {"seller_id": "acme", "context": product()}
        )
        conversation_id = started["conversation_id"]
        assert "room_id" not in started, "the buyer has no business with Matrix ids"
        room_id = (await marketplace.ok("GET", f"/conversations/{conversation_id}"))["room_id"]
        await stream.next_of("conversation.updated", conversation__conversation_id=conversation_id)
        await owner.wait_until(lambda: room_id in owner.invites, what="invite")
        await owner.accept_invite(room_id)

        question = await anna.ok(
            "POST",
            f"/conversations/{conversation_id}/messages",
            {"text": "In stock?", "client_id": "q1"},
        )
        await stream.next_of("message.created", message__message_id=question["message_id"])
        await stream.next_of(
            "message.updated", message__message_id=question["message_id"], message__status="sent"
        )

        # The seller reads the question: ✓✓ for the buyer.
        [event] = await owner.wait_until(
            lambda: [m for m in owner.messages(room_id) if m["sender"] == ghost], what="question"
        )
        # A client re-sends its receipt as the user keeps reading; so does this one, because
        # Synapse may hold an appservice's first receipt push back for a while.
        for attempt in range(6):
            await read_in_matrix(owner, room_id, event["event_id"])
            try:
                await stream.next_of(
                    "message.updated",
                    within=10,
                    message__message_id=question["message_id"],
                    message__status="read",
                )
                break
            except TimeoutError:
                assert attempt < 5, "the seller's read receipt never turned into ✓✓"

        # The seller types, then answers with formatting.
        await owner.client.room_typing(room_id, True, timeout=10_000)
        typing = await stream.next_of("typing", typing=True)
        assert typing["sender_name"] == "owner"
        await owner.send(
            room_id,
            {
                "msgtype": "m.text",
                "body": "Yes! see link",
                "format": "org.matrix.custom.html",
                "formatted_body": (
                    '<b>Yes!</b> <a href="https://shop.example/p">see</a>'
                    "<img src=x onerror=alert(1)>"
                ),
            },
        )
        reply = await stream.next_of("message.created", message__sender="seller")
        assert reply["message"]["text"] == "Yes! see link"
        html = reply["message"]["html"]
        assert "<b>Yes!</b>" in html and "https://shop.example/p" in html
        assert "onerror" not in html and "<img" not in html
        unread = await anna.ok("GET", "/conversations")
        assert unread["unread_total"] == 1

        # The buyer drops off; frames that arrive meanwhile are replayed on reconnect.
        last_seq = stream.frames[-1]["seq"]
        await stream.close()
        await owner.send_text(room_id, "Anything else?")
        resumed = await anna.stream(since=last_seq)
        missed = await resumed.next_of("message.created", message__text="Anything else?")
        assert missed["seq"] > last_seq
        assert all(frame["seq"] > last_seq for frame in resumed.frames)

        # The buyer reads: the unread count clears and the seller sees the ghost's receipt.
        await anna.ok(
            "POST",
            f"/conversations/{conversation_id}/read",
            {"up_to": missed["message"]["message_id"]},
        )
        updated = await resumed.next_of(
            "conversation.updated", conversation__conversation_id=conversation_id
        )
        assert updated["conversation"]["unread"] == 0
        assert (await anna.ok("GET", "/conversations"))["unread_total"] == 0
        await _wait_for_receipt(owner, room_id, ghost)

        # The buyer types: the seller's client shows it.
        await anna.ok("POST", f"/conversations/{conversation_id}/typing", {"typing": True})
        await owner.wait_until(
            lambda: (
                ghost in owner.client.rooms[room_id].typing_users
                if room_id in owner.client.rooms
                else False
            ),
            what="the buyer typing",
        )
        await resumed.close()

        listed = await marketplace.ok("GET", f"/conversations/{conversation_id}/messages")
        statuses = {m["text"]: m["status"] for m in listed["messages"]}
        assert statuses["In stock?"] == "read"
        assert statuses["Anything else?"] == "read"
    finally:
        await anna.close()


async def read_in_matrix(owner: SellerClient, room_id: str, event_id: str) -> None:
    response = await owner.client.update_receipt_marker(room_id, event_id)
    assert isinstance(response, nio.UpdateReceiptMarkerResponse), response


async def _wait_for_receipt(owner: SellerClient, room_id: str, ghost: str) -> None:
    def receipted() -> bool:
        room = owner.client.rooms.get(room_id)
        return bool(room and ghost in room.read_receipts)

    await owner.wait_until(receipted, what="the buyer's read receipt")


async def test_widget_js_is_served_compressed_and_cacheable(runner: BridgeRunner) -> None:
    await runner.start()
    url = f"{runner.config.web.public_url}/widget/widget.js"
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.get(url, headers={"Accept-Encoding": "gzip"}) as response:
            assert response.status == 200
            assert response.headers["Content-Encoding"] == "gzip"
            assert response.headers["Content-Type"].startswith("text/javascript")
            packed = await response.read()
            etag = response.headers["ETag"]
        async with session.get(url, headers={"Accept-Encoding": "identity"}) as response:
            plain = await response.read()
            assert "Content-Encoding" not in response.headers
        async with session.get(url, headers={"If-None-Match": etag}) as response:
            assert response.status == 304
    assert gzip.decompress(packed) == plain
    assert b"customElements.define" in plain
    assert len(packed) < 30_000
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{runner.config.web.public_url}/widget/../config.yaml") as response,
    ):
        assert response.status == 404
