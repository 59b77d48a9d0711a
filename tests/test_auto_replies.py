"""The greeting and the away reply on the real homeserver: the buyer's first message gets
both, marked automatic, in the widget and the webhook; the seller's client sees them as the
bot's notices after the buyer's message; a second message the same day gets neither.

The seller's hours are closed now without faking a clock in the running bridge: its zone
puts the seller's local time near noon, and it opens only three days from its today."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import SITE, BridgeRunner, Sites, product
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
GREETING = "Hello {buyer}! Thanks for asking about {title}."
AWAY = "We are away now and answer on {seller}'s next working day."


def closed_now() -> dict[str, Any]:
    """A time zone where it is about noon now, and hours on a day three days away: closed
    now, and the seller's day doesn't end while the test runs."""
    now = datetime.now(UTC)
    offset = 12 - now.hour  # -11 … +12 hours from UTC
    # Etc/GMT names count the other way: Etc/GMT-3 is three hours ahead of UTC.
    timezone = "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"
    local_weekday = (now + timedelta(hours=offset)).weekday()
    open_day = DAYS[(local_weekday + 3) % 7]
    return {"timezone": timezone, "hours": {open_day: [["09:00", "17:00"]]}}


async def test_the_first_message_gets_the_greeting_then_the_away_reply_once(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    sites: Sites,
    new_seller: NewSeller,
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    seller = await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {
            "name": "ACME",
            "members": [{"user_id": owner.user_id, "role": "owner"}],
            "greeting": GREETING,
            "away_message": AWAY,
            **closed_now(),
        },
    )
    assert (seller["greeting"], seller["away_message"]) == (GREETING, AWAY)
    await marketplace.ok("PUT", "/buyers/anna", {"name": "Anna", "language": "en"})
    conversation = await marketplace.ok(
        "POST",
        "/conversations",
        {"seller_id": "acme", "buyer_id": "anna", "context": product()},
    )
    room_id, conversation_id = conversation["room_id"], conversation["conversation_id"]
    await owner.wait_until(lambda: room_id in owner.invites, what="the invite")
    await owner.accept_invite(room_id)

    anna = BuyerClient(runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "anna"))
    path = f"/conversations/{conversation_id}/messages"
    greeting = "Hello Anna! Thanks for asking about Electric kettle 1.7 l."
    away = "We are away now and answer on ACME's next working day."
    try:
        await anna.ok("POST", path, {"text": "Is the kettle in stock?", "client_id": "q-1"})
        listed = (await anna.ok("GET", path))["messages"]
        assert [(m["sender"], m["text"], m["automatic"]) for m in listed] == [
            ("buyer", "Is the kettle in stock?", False),
            ("seller", greeting, True),
            ("seller", away, True),
        ]
        assert {m["sender_name"] for m in listed[1:]} == {"ACME"}

        def room() -> list[tuple[str, str]]:
            return [
                (m["content"].get("msgtype", ""), m["content"].get("body", ""))
                for m in owner.messages(room_id)
            ]

        def told() -> bool:
            bodies = [body for _, body in room()]
            return any("Away reply sent" in body for body in bodies)

        await owner.wait_until(told, what="the away reply's notice")
        said = [
            (kind, body)
            for kind, body in room()
            if "Is the kettle in stock?" in body or "sent to the buyer" in body
        ]
        assert said == [
            ("m.text", "Is the kettle in stock?"),
            ("m.notice", f"Greeting sent to the buyer: {greeting}"),
            ("m.notice", f"Away reply sent to the buyer: {away}"),
        ]

        # The same day again: the buyer's words reach the room, nothing automatic follows.
        await anna.ok("POST", path, {"text": "And in white?", "client_id": "q-2"})
        listed = (await anna.ok("GET", path))["messages"]
        assert [(m["text"], m["automatic"]) for m in listed][3:] == [("And in white?", False)]
        await owner.wait_until(
            lambda: any(body == "And in white?" for _, body in room()), what="the second message"
        )
        assert [body for _, body in room() if "sent to the buyer" in body] == [
            f"Greeting sent to the buyer: {greeting}",
            f"Away reply sent to the buyer: {away}",
        ]

        created = await webhooks.wait_for("message.created", count=4)
        automatic = [c["message"]["text"] for c in created if c["message"]["automatic"]]
        assert automatic == [greeting, away]
        assert {c["message"]["sender"] for c in created if c["message"]["automatic"]} == {"seller"}
        assert created[3]["message"]["text"] == "And in white?"
    finally:
        await anna.close()
