"""The seller as the widget finds them before writing (`GET /widget/v1/sellers/{id}`), and
the feedback form a buyer leaves while the seller's chat is off, through a real bridge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
import pytest_asyncio

from bridge.app import Bridge
from bridge.core.hours import DAYS
from bridge.core.ids import SellerID, SiteID
from bridge.core.limits import Rate
from tests.conftest import FAST, SITE, BridgeRunner, Sites
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.marketplace import MarketplaceClient
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.synapse


@pytest_asyncio.fixture(loop_scope="session")
async def anna(runner: BridgeRunner, sites: Sites) -> AsyncIterator[BuyerClient]:
    client = BuyerClient(
        runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "anna")
    )
    yield client
    await client.close()


async def _stored(bridge: Bridge, seller_id: str = "acme") -> list[tuple[str, str | None]]:
    found = await bridge.repository.list_feedback(SiteID(SITE), SellerID(seller_id))
    return [(feedback.text, feedback.contact) for feedback in found]


async def test_the_state_says_whether_the_seller_is_in_and_when_they_return(
    runner: BridgeRunner, marketplace: MarketplaceClient, anna: BuyerClient
) -> None:
    await runner.start()
    # Open only on a weekday three days from today: closed now, whatever the hour.
    opens_on = datetime.now(UTC).date() + timedelta(days=3)
    day = DAYS[opens_on.weekday()]
    await marketplace.ok(
        "PUT",
        "/sellers/later",
        {"name": "Later Ltd", "timezone": "UTC", "hours": {day: [["09:00", "10:00"]]}},
    )
    await marketplace.ok("PUT", "/sellers/always", {"name": "Always Open"})
    await marketplace.ok(
        "PUT", "/sellers/closed", {"name": "Closed Shop", "chat_enabled": False, "hours": {}}
    )

    assert await anna.ok("GET", "/sellers/later") == {
        "seller_id": "later",
        "name": "Later Ltd",
        "chat_enabled": True,
        "open_now": False,
        "next_open_at": datetime.combine(opens_on, time(9, 0), UTC)
        .isoformat()
        .replace("+00:00", "Z"),
        "usually_replies_within_minutes": None,
    }
    assert await anna.ok("GET", "/sellers/always") == {
        "seller_id": "always",
        "name": "Always Open",
        "chat_enabled": True,
        "open_now": True,
        "next_open_at": None,
        "usually_replies_within_minutes": None,
    }
    # A week with no hours at all: away, with no time to come back.
    closed = await anna.ok("GET", "/sellers/closed")
    assert (closed["chat_enabled"], closed["open_now"], closed["next_open_at"]) == (
        False,
        False,
        None,
    )

    status, error = await anna.call("GET", "/sellers/nobody")
    assert (status, error["errcode"]) == (404, "BAZAAR_UNKNOWN_SELLER")
    status, error = await anna.call("POST", "/sellers/nobody/feedback", {"text": "Hello"})
    assert (status, error["errcode"]) == (404, "BAZAAR_UNKNOWN_SELLER")


async def test_a_form_is_refused_while_chat_is_on_and_for_bad_input(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    anna: BuyerClient,
    webhooks: WebhookReceiver,
) -> None:
    bridge = await runner.start()
    await marketplace.ok("PUT", "/sellers/acme", {"name": "ACME"})

    status, error = await anna.call("POST", "/sellers/acme/feedback", {"text": "Hello"})
    assert (status, error["errcode"]) == (409, "BAZAAR_CHAT_ENABLED")

    await marketplace.ok("PUT", "/sellers/acme", {"name": "ACME", "chat_enabled": False})
    refused = [
        ({}, 400, "M_MISSING_PARAM"),
        ({"text": ""}, 400, "M_INVALID_PARAM"),
        ({"text": "   \n "}, 400, "M_INVALID_PARAM"),
        ({"text": 42}, 400, "M_INVALID_PARAM"),
        ({"text": "x" * 10_001}, 413, "M_TOO_LARGE"),
        ({"text": "Hello", "contact": "a" * 321}, 413, "M_TOO_LARGE"),
        ({"text": "Hello", "contact": ["anna@example.org"]}, 400, "M_INVALID_PARAM"),
    ]
    for body, want_status, errcode in refused:
        status, error = await anna.call("POST", "/sellers/acme/feedback", body)
        assert (status, error["errcode"]) == (want_status, errcode), body
    status, error = await anna.call("POST", "/sellers/acme/feedback", ["not", "an", "object"])
    assert status == 400, error
    assert await _stored(bridge) == []

    # The longest text and contact that are allowed, and a blank contact that is none.
    answer = await anna.ok(
        "POST", "/sellers/acme/feedback", {"text": "y" * 10_000, "contact": "c" * 320}
    )
    assert answer["feedback_id"].startswith("f")
    await anna.ok("POST", "/sellers/acme/feedback", {"text": " Call me back ", "contact": "  "})
    assert await _stored(bridge) == [("y" * 10_000, "c" * 320), ("Call me back", None)]
    sent = await webhooks.wait_for("feedback.created", count=2)
    # Nothing refused went out as a webhook either: only the two stored forms.
    assert [event["feedback"]["text"] for event in sent] == ["y" * 10_000, "Call me back"]
    first = sent[0]
    assert first["conversation_id"] is None
    assert first["site"] == SITE
    assert first["feedback"] == {
        "feedback_id": answer["feedback_id"],
        "seller_id": "acme",
        "buyer_id": "anna",
        "text": "y" * 10_000,
        "contact": "c" * 320,
        "created_at": first["feedback"]["created_at"],
    }
    assert first["feedback"]["created_at"].endswith("Z")


async def test_a_flood_of_forms_is_refused_and_not_stored(
    runner: BridgeRunner, marketplace: MarketplaceClient, anna: BuyerClient
) -> None:
    runner.tuning = replace(FAST, buyer_rates={"feedback": Rate(burst=2, per_second=0.001)})
    bridge = await runner.start()
    await marketplace.ok("PUT", "/sellers/acme", {"name": "ACME", "chat_enabled": False})
    for n in range(2):
        await anna.ok("POST", "/sellers/acme/feedback", {"text": f"form {n}"})
    status, error = await anna.call("POST", "/sellers/acme/feedback", {"text": "form 2"})
    assert (status, error["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    assert error["retry_after_ms"] > 0
    assert await _stored(bridge) == [("form 0", None), ("form 1", None)]


async def test_an_update_that_leaves_chat_enabled_out_keeps_the_switch(
    runner: BridgeRunner, marketplace: MarketplaceClient, anna: BuyerClient
) -> None:
    await runner.start()
    await marketplace.ok("PUT", "/sellers/acme", {"name": "ACME", "chat_enabled": False})
    updated = await marketplace.ok("PUT", "/sellers/acme", {"name": "ACME Trading"})
    assert updated["chat_enabled"] is False
    state = await anna.ok("GET", "/sellers/acme")
    assert (state["name"], state["chat_enabled"]) == ("ACME Trading", False)
    # Said, it is what is stored; a new seller without it has chat on.
    assert (await marketplace.ok("PUT", "/sellers/acme", {"name": "ACME", "chat_enabled": True}))[
        "chat_enabled"
    ] is True
    assert (await marketplace.ok("PUT", "/sellers/fresh", {"name": "Fresh"}))["chat_enabled"]
