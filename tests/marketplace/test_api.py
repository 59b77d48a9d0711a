"""The marketplace API answers bad input with a named error and stores nothing half-way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import jwt
import pytest

from tests.conftest import OTHER_SITE, SITE, BridgeRunner, Sites, product
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.journeys import open_conversation
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]


async def test_tokens_belong_to_one_site(
    runner: BridgeRunner, marketplace: MarketplaceClient, sites: Sites
) -> None:
    await runner.start()
    status, error = await marketplace.call("GET", "/conversations", token="")
    assert (status, error["errcode"]) == (401, "M_MISSING_TOKEN")
    status, error = await marketplace.call("GET", "/conversations", token="not-a-token")
    assert (status, error["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    status, error = await marketplace.call("GET", "/conversations", token=sites.other_api_token)
    assert (status, error["errcode"]) == (403, "M_FORBIDDEN")
    other = MarketplaceClient(runner.config.web.public_url, OTHER_SITE, sites.other_api_token)
    try:
        assert await other.ok("GET", "/conversations") == {"conversations": []}
    finally:
        await other.close()
    missing = MarketplaceClient(runner.config.web.public_url, "nosuchsite", sites.api_token)
    try:
        status, error = await missing.call("GET", "/conversations")
        assert (status, error["errcode"]) == (404, "BAZAAR_UNKNOWN_SITE")
    finally:
        await missing.close()


@pytest.mark.parametrize(
    ("body", "status", "errcode"),
    [
        (b"{not json", 400, "M_NOT_JSON"),
        (b"[1, 2]", 400, "M_BAD_JSON"),
        (b'{"language": "en"}', 400, "M_MISSING_PARAM"),
        (b'{"name": 42}', 400, "M_INVALID_PARAM"),
        (
            b'{"name": "ACME", "members": [{"user_id": "not-a-mxid", "role": "owner"}]}',
            400,
            "M_INVALID_PARAM",
        ),
        (b'{"name": "ACME", "email": "nope"}', 400, "M_INVALID_PARAM"),
        (b'{"name": "ACME", "chat_enabled": "yes"}', 400, "M_INVALID_PARAM"),
    ],
)
async def test_bad_seller_bodies_are_refused_and_nothing_is_stored(
    runner: BridgeRunner, marketplace: MarketplaceClient, body: bytes, status: int, errcode: str
) -> None:
    await runner.start()
    answer_status, error = await marketplace.call("PUT", "/sellers/acme", raw=body)
    assert (answer_status, error["errcode"]) == (status, errcode), error
    assert error["error"]
    status, error = await marketplace.call("GET", "/sellers/acme")
    assert (status, error["errcode"]) == (404, "BAZAAR_UNKNOWN_SELLER")


async def test_conversation_needs_known_seller_buyer_and_a_valid_context(
    runner: BridgeRunner, marketplace: MarketplaceClient, webhooks: WebhookReceiver
) -> None:
    await runner.start()
    await marketplace.ok("PUT", "/buyers/b1", {"name": "Bob"})
    await marketplace.ok("PUT", "/sellers/s1", {"name": "Shop One"})
    cases = [
        (
            {"seller_id": "nobody", "buyer_id": "b1", "context": product()},
            404,
            "BAZAAR_UNKNOWN_SELLER",
        ),
        (
            {"seller_id": "s1", "buyer_id": "nobody", "context": product()},
            404,
            "BAZAAR_UNKNOWN_BUYER",
        ),
        ({"seller_id": "s1", "buyer_id": "b1"}, 400, "M_MISSING_PARAM"),
        (
            {
                "seller_id": "s1",
                "buyer_id": "b1",
                "context": {"type": "wish", "id": "1", "title": "x"},
            },
            400,
            "M_INVALID_PARAM",
        ),
        (
            {"seller_id": "s1", "buyer_id": "b1", "context": product(url="javascript:alert(1)")},
            400,
            "M_INVALID_PARAM",
        ),
        (
            {"seller_id": "s1", "buyer_id": "b1", "context": product(title="x" * 501)},
            413,
            "M_TOO_LARGE",
        ),
    ]
    for body, status, errcode in cases:
        answer_status, error = await marketplace.call("POST", "/conversations", body)
        assert (answer_status, error["errcode"]) == (status, errcode), (body, error)
    assert await marketplace.ok("GET", "/conversations") == {"conversations": []}
    assert webhooks.of_type("conversation.created") == []


async def test_messages_bad_input_and_idempotency(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    webhooks: WebhookReceiver,
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    conversation = await open_conversation(marketplace, owner)
    path = f"/conversations/{conversation['conversation_id']}/messages"

    cases = [
        ({"text": "x" * 10_001, "client_id": "big"}, 413, "M_TOO_LARGE"),
        ({"text": "   ", "client_id": "blank"}, 400, "M_INVALID_PARAM"),
        ({"text": "hello"}, 400, "M_MISSING_PARAM"),
        ({"client_id": "no-text"}, 400, "M_MISSING_PARAM"),
        ({"text": ["hello"], "client_id": "list"}, 400, "M_INVALID_PARAM"),
    ]
    for body, status, errcode in cases:
        answer_status, error = await marketplace.call("POST", path, body)
        assert (answer_status, error["errcode"]) == (status, errcode), (body, error)
    status, error = await marketplace.call(
        "POST", "/conversations/cnope/messages", {"text": "hi", "client_id": "x"}
    )
    assert (status, error["errcode"]) == (404, "BAZAAR_UNKNOWN_CONVERSATION")
    assert await marketplace.ok("GET", path) == {"messages": []}

    status, first = await marketplace.call("POST", path, {"text": "Hello", "client_id": "k1"})
    assert status == 201
    status, again = await marketplace.call("POST", path, {"text": "Hello", "client_id": "k1"})
    assert status == 200 and again["message_id"] == first["message_id"]
    status, error = await marketplace.call("POST", path, {"text": "Other", "client_id": "k1"})
    assert (status, error["errcode"]) == (409, "BAZAAR_CLIENT_ID_REUSED")
    listed = await marketplace.ok("GET", path)
    assert [m["text"] for m in listed["messages"]] == ["Hello"]
    created = await webhooks.wait_for("message.created")
    assert [e["message"]["message_id"] for e in created] == [first["message_id"]]

    status, error = await marketplace.call("GET", path, params={"limit": "many"})
    assert (status, error["errcode"]) == (400, "M_INVALID_PARAM")
    status, error = await marketplace.call("GET", path, params={"after": "mnope"})
    assert (status, error["errcode"]) == (404, "BAZAAR_UNKNOWN_MESSAGE")


async def test_paging_listing_and_unread_counts(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    conversation = await open_conversation(marketplace, owner)
    conversation_id = conversation["conversation_id"]
    path = f"/conversations/{conversation_id}/messages"
    for n in range(5):
        await marketplace.ok("POST", path, {"text": f"m{n}", "client_id": f"p{n}"})
    first_page = await marketplace.ok("GET", path, params={"limit": "2"})
    assert [m["text"] for m in first_page["messages"]] == ["m0", "m1"]
    rest = await marketplace.ok(
        "GET", path, params={"after": first_page["messages"][-1]["message_id"]}
    )
    assert [m["text"] for m in rest["messages"]] == ["m2", "m3", "m4"]

    listed = await marketplace.ok("GET", "/conversations", params={"seller_id": "acme"})
    [entry] = listed["conversations"]
    assert entry["conversation_id"] == conversation_id
    assert entry["unread"] == {"buyer": 0, "seller": 5}
    assert entry["last_message_at"] == rest["messages"][-1]["created_at"]
    assert await marketplace.ok("GET", "/conversations", params={"state": "archived"}) == {
        "conversations": []
    }
    status, error = await marketplace.call("GET", "/conversations", params={"state": "lost"})
    assert (status, error["errcode"]) == (400, "M_INVALID_PARAM")

    status, again = await marketplace.call(
        "POST", "/conversations", {"seller_id": "acme", "buyer_id": "Anna_K", "context": product()}
    )
    assert status == 200 and again["conversation_id"] == conversation_id


async def test_buyer_tokens_are_signed_for_the_widget(
    runner: BridgeRunner, marketplace: MarketplaceClient, sites: Sites
) -> None:
    await runner.start()
    await marketplace.ok("PUT", "/buyers/b7", {"name": "Bea", "language": "ru"})
    answer = await marketplace.ok("POST", "/buyer-tokens", {"buyer_id": "b7", "ttl": 600})
    claims = jwt.decode(answer["token"], sites.widget_secret, algorithms=["HS256"], issuer=SITE)
    assert (claims["sub"], claims["name"], claims["lang"]) == ("b7", "Bea", "ru")
    assert claims["exp"] == answer["expires_at"]
    status, error = await marketplace.call(
        "POST", "/buyer-tokens", {"buyer_id": "b7", "ttl": 10**9}
    )
    assert (status, error["errcode"]) == (400, "M_INVALID_PARAM")
    status, error = await marketplace.call("POST", "/buyer-tokens", {"buyer_id": "ghost"})
    assert (status, error["errcode"]) == (404, "BAZAAR_UNKNOWN_BUYER")


async def test_webhooks_are_retried_until_the_marketplace_accepts_them(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    webhooks: WebhookReceiver,
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    conversation = await open_conversation(marketplace, owner)
    await webhooks.wait_for("conversation.created")
    webhooks.failures_left = 3
    attempts_before = webhooks.attempts
    path = f"/conversations/{conversation['conversation_id']}/messages"
    first = await marketplace.ok("POST", path, {"text": "one", "client_id": "w1"})
    second = await marketplace.ok("POST", path, {"text": "two", "client_id": "w2"})
    created = await webhooks.wait_for("message.created", count=2)
    # The first was refused three times and then accepted; order is kept behind it.
    assert [e["message"]["message_id"] for e in created] == [
        first["message_id"],
        second["message_id"],
    ]
    assert webhooks.attempts - attempts_before >= 3 + 2
    assert webhooks.bad_signatures == 0


# On the tests' homeserver "@bazaar_shop_" and ":localhost" leave 232 bytes for the escaped
# buyer id, and "_" escapes to "__": 116 of them make a ghost of exactly 255 bytes.
FITS = "_" * 116
TOO_LONG = "_" * 117


async def test_a_buyer_id_whose_ghost_matrix_can_t_take_is_refused_at_every_door(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    webhooks: WebhookReceiver,
    sites: Sites,
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {"name": "ACME", "members": [{"user_id": owner.user_id, "role": "owner"}]},
    )

    def refused(answer: tuple[int, dict[str, str]], status: int = 400) -> None:
        code, error = answer
        assert (code, error["errcode"]) == (status, "BAZAAR_ID_TOO_LONG"), error
        assert "255 bytes" in error["error"], error

    refused(await marketplace.call("PUT", f"/buyers/{TOO_LONG}", {"name": "Long"}))
    refused(
        await marketplace.call(
            "POST",
            "/conversations",
            {"seller_id": "acme", "buyer_id": TOO_LONG, "context": product()},
        )
    )
    refused(await marketplace.call("POST", "/buyer-tokens", {"buyer_id": TOO_LONG}))
    # A token the marketplace signed itself, for a buyer the bridge can't carry: unusable.
    widget = BuyerClient(
        runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, TOO_LONG)
    )
    try:
        refused(await widget.call("GET", "/conversations"), status=401)
    finally:
        await widget.close()
    assert await marketplace.ok("GET", "/conversations") == {"conversations": []}

    # One byte less is a ghost Synapse takes: the conversation and its message go through.
    await marketplace.ok("PUT", f"/buyers/{FITS}", {"name": "Longest"})
    status, conversation = await marketplace.call(
        "POST", "/conversations", {"seller_id": "acme", "buyer_id": FITS, "context": product()}
    )
    assert status == 201 and conversation["room_id"], conversation
    path = f"/conversations/{conversation['conversation_id']}/messages"
    await marketplace.ok("POST", path, {"text": "Does it fit?", "client_id": "f1"})

    async def status_of_message() -> str | None:
        [message] = (await marketplace.ok("GET", path))["messages"]
        return None if message["status"] == "pending" else str(message["status"])

    assert await eventually(status_of_message, what="the message delivered") == "sent"
    created = await webhooks.wait_for("conversation.created")
    assert [e["conversation"]["buyer_id"] for e in created] == [FITS]
