"""The pane's API against a real Synapse: real OpenID tokens name the member; only a joined
member of the room's seller sees it, on every call; the room carries the widget."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio

from tests.conftest import BridgeRunner
from tests.pane.support import (
    BUYER,
    KETTLE,
    NewSeller,
    PaneClient,
    members,
    openid_token,
    pane_room,
)
from tests.support.journeys import seller_messages
from tests.support.marketplace import MarketplaceClient
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse


@pytest_asyncio.fixture(loop_scope="session")
async def pane(runner: BridgeRunner) -> AsyncIterator[PaneClient]:
    client = PaneClient(runner.config.web.public_url)
    yield client
    await client.close()


async def test_a_member_sees_the_conversation_and_sends_a_template(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller, pane: PaneClient
) -> None:
    await runner.start()
    room = await pane_room(marketplace, new_seller)
    token = await openid_token(room.manager)

    status, opened = await pane.open(room.room_id, token)
    assert status == 200, opened
    assert (opened["user_id"], opened["room_id"]) == (room.manager.user_id, room.room_id)

    status, view = await pane.room(room.room_id, opened["session"])
    assert status == 200, view
    assert view["conversation_id"] == room.conversation_id
    assert view["context"]["title"] == KETTLE["title"]
    assert view["context"]["price"] == "24.90"
    # The seller's view of the buyer: this site shares no contacts.
    assert view["buyer"] == {
        "buyer_id": "anna",
        "name": BUYER["name"],
        "profile_url": BUYER["profile_url"],
        "summary": BUYER["summary"],
    }
    assert view["orders"] == [] and view["offers"] == []
    assert view["templates"] == [
        {"name": "hello", "text": f"Hello {BUYER['name']}, about {KETTLE['title']}!", "file": None}
    ]

    await marketplace.ok(
        "PUT",
        f"/conversations/{room.conversation_id}/orders/A-1",
        {
            "status": "paid",
            "total": "24.90",
            "currency": "EUR",
            "url": "https://shop.example/orders/A-1",
            "items": [{"title": "Kettle", "quantity": 1, "price": "24.90"}],
        },
    )
    await room.manager.send_text(room.room_id, "!offer 2 19.90")

    async def with_offer() -> dict[str, Any] | None:
        status, view = await pane.room(room.room_id, opened["session"])
        assert status == 200, view
        return view if view["offers"] else None

    view = await eventually(with_offer, what="the offer in the pane")
    assert [(o["order_id"], o["status"]) for o in view["orders"]] == [("A-1", "paid")]
    assert [(o["quantity"], o["price"], o["created_by"]) for o in view["offers"]] == [
        (2, "19.90", room.manager.user_id)
    ]

    status, sent = await pane.send(room.room_id, "hello", opened["session"], client_id="click-1")
    assert (status, sent) == (200, {"sent": "hello"})
    # The same click again (a retry) sends nothing twice.
    status, _ = await pane.send(room.room_id, "hello", opened["session"], client_id="click-1")
    assert status == 200
    expected = f"Hello {BUYER['name']}, about {KETTLE['title']}!"

    async def buyer_got_it() -> list[str]:
        return await seller_messages(marketplace, room.conversation_id)

    assert await eventually(buyer_got_it, what="the template at the buyer") == [expected]
    await room.owner.wait_until(
        lambda: (
            f"Sent “hello” to the buyer as manager's reply:\n{expected}"
            in room.owner.conversation(room.room_id)
        ),
        what="the room's notice of the template, as `!t hello` gives it",
    )
    assert await seller_messages(marketplace, room.conversation_id) == [expected]

    status, error = await pane.send(room.room_id, "nope", opened["session"])
    assert (status, error["errcode"]) == (404, "BAZAAR_UNKNOWN_TEMPLATE")


async def test_forged_foreign_and_strangers_tokens_are_refused(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller, pane: PaneClient
) -> None:
    bridge = await runner.start()
    room = await pane_room(marketplace, new_seller)
    token = await openid_token(room.owner)

    status, error = await pane.open(room.room_id, {**token, "access_token": "forged-token"})
    assert (status, error["errcode"]) == (401, "BAZAAR_BAD_OPENID_TOKEN")
    status, error = await pane.open(room.room_id, {**token, "matrix_server_name": "evil.example"})
    assert (status, error["errcode"]) == (403, "BAZAAR_WRONG_HOMESERVER")

    # A user of the homeserver who is nobody's member, and a member not joined to the room.
    stranger = await new_seller("stranger")
    status, error = await pane.open(room.room_id, await openid_token(stranger))
    assert (status, error["errcode"]) == (403, "BAZAAR_NOT_A_MEMBER")
    newcomer = await new_seller("newcomer")
    await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {
            "name": "ACME",
            "members": [
                *members(room.owner, room.manager),
                {"user_id": newcomer.user_id, "role": "manager"},
            ],
        },
    )
    await newcomer.wait_until(lambda: room.room_id in newcomer.invites, what="the invite")
    status, error = await pane.open(room.room_id, await openid_token(newcomer))
    assert (status, error["errcode"]) == (403, "BAZAAR_NOT_A_MEMBER")

    # Bad input.
    for body in (
        {},
        {"room_id": room.room_id, "access_token": 5, "matrix_server_name": "localhost"},
        {"room_id": "not-a-room", "access_token": "x", "matrix_server_name": "localhost"},
        {"room_id": room.room_id, "access_token": "x" * 5000, "matrix_server_name": "localhost"},
    ):
        status, error = await pane.call("POST", "/session", body)
        assert status == 400, (body, error)
        assert error["errcode"].startswith("M_") and error["error"]
    status, error = await pane.open("!unknown:localhost", token)
    assert (status, error["errcode"]) == (403, "BAZAAR_NOT_A_MEMBER")
    status, error = await pane.room(room.room_id, "not-a-session")
    assert (status, error["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    status, error = await pane.call("GET", f"/rooms/{quote(room.room_id)}")
    assert (status, error["errcode"]) == (401, "M_MISSING_TOKEN")

    # A session that ran out.
    sessions = bridge.pane_sessions
    expired = sessions.token(sessions.issue(room.owner.user_id, room.room_id, ttl=-10))
    status, error = await pane.room(room.room_id, expired)
    assert (status, error["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    assert "expired" in error["error"]


async def test_a_session_is_bound_to_its_room_and_a_removed_manager_is_refused(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller, pane: PaneClient
) -> None:
    await runner.start()
    room = await pane_room(marketplace, new_seller)
    other = await marketplace.ok(
        "POST",
        "/conversations",
        {"seller_id": "acme", "buyer_id": "anna", "context": {**KETTLE, "id": "kettle-2"}},
    )
    other_room = other["room_id"]
    await room.manager.wait_until(lambda: other_room in room.manager.invites, what="invite")
    await room.manager.accept_invite(other_room)

    session = await pane.session_for(room.room_id, room.manager)
    status, error = await pane.room(other_room, session)
    assert (status, error["errcode"]) == (403, "BAZAAR_NOT_A_MEMBER")
    status, error = await pane.send(other_room, "hello", session)
    assert (status, error["errcode"]) == (403, "BAZAAR_NOT_A_MEMBER")
    assert (await pane.room(room.room_id, session))[0] == 200

    # The manager leaves the team: the session they hold no longer opens the room.
    await marketplace.ok(
        "PUT", "/sellers/acme", {"name": "ACME", "members": members(room.owner, None)}
    )
    status, error = await pane.room(room.room_id, session)
    assert (status, error["errcode"]) == (403, "BAZAAR_NOT_A_MEMBER")
    status, error = await pane.send(room.room_id, "hello", session)
    assert (status, error["errcode"]) == (403, "BAZAAR_NOT_A_MEMBER")
    status, error = await pane.open(room.room_id, await openid_token(room.manager))
    assert (status, error["errcode"]) == (403, "BAZAAR_NOT_A_MEMBER")
    assert await seller_messages(marketplace, room.conversation_id) == []


async def test_the_room_carries_the_pane_pinned_right(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller, pane: PaneClient
) -> None:
    bridge = await runner.start()
    room = await pane_room(marketplace, new_seller)
    widget = await room.owner.state(room.room_id, "im.vector.modular.widgets", "bazaar_pane")
    public_url = runner.config.web.public_url
    assert widget == {
        "type": "m.custom",
        "url": f"{public_url}/matrix-widget/v1/?room_id=$matrix_room_id&user_id=$matrix_user_id",
        "name": "Conversation",
        "data": {},
        "waitForIframeLoad": True,
        "creatorUserId": f"@{runner.config.appservice.bot_username}:localhost",
        "id": "bazaar_pane",
    }
    layout = await room.owner.state(room.room_id, "io.element.widgets.layout")
    assert layout == {"widgets": {"bazaar_pane": {"container": "right"}}}

    # The page and its script are served with a policy that runs no inline script.
    async with pane.session.get(widget["url"].split("?")[0]) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"

    # A room whose widget is gone gets it back when the bridge next reads its state.
    await bridge.gateway.put_state(room.room_id, "im.vector.modular.widgets", {}, "bazaar_pane")
    assert await room.owner.state(room.room_id, "im.vector.modular.widgets", "bazaar_pane") == {}
    await marketplace.ok(
        "PUT", "/sellers/acme", {"name": "ACME", "members": members(room.owner, None)}
    )

    async def restored() -> bool:
        now = await room.owner.state(room.room_id, "im.vector.modular.widgets", "bazaar_pane")
        return now == widget

    await eventually(restored, what="the widget back in the room")
