"""Response-time reports end to end, over waits the test stored: the marketplace's stats
routes, the widget's "usually replies within …", and `!stats` in the management room
from a real Matrix client, with its chart a PNG that decodes."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image

from bridge.app import Bridge
from bridge.core.figures import Wait
from bridge.core.ids import BuyerID, ConversationID, SellerID, SiteID, UserID
from tests.conftest import SITE, BridgeRunner, Sites
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.journeys import two_conversations
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waits import add_waits, stored_conversation

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]

ACME = SellerID("acme")
HOUR = 3600.0
ALICE = UserID("@alice:stats.test")
BOB = UserID("@bob:stats.test")


def replied(
    conversation_id: ConversationID,
    now: datetime,
    hours_ago: float,
    wall_hours: float,
    working_hours: float,
    *,
    by: UserID = ALICE,
    first: bool = False,
    seller_id: SellerID = ACME,
) -> Wait:
    opened = now - timedelta(hours=hours_ago)
    return Wait(
        conversation_id,
        SiteID(SITE),
        seller_id,
        opened,
        first=first,
        closed_at=opened + timedelta(hours=wall_hours),
        outcome="replied",
        closed_by=by,
        wall_seconds=wall_hours * HOUR,
        working_seconds=working_hours * HOUR,
    )


async def acme_waits(bridge: Bridge, one: ConversationID, two: ConversationID) -> None:
    """Replies of 0.5, 1, 3 and 30 h (working 0.5, 1, 2, 20 h), one open for 30 h, one
    closed with !noreply; and one from 20 days ago, outside a 7-day period."""
    now = datetime.now(UTC)
    open_late = Wait(two, SiteID(SITE), ACME, now - timedelta(hours=30))
    noreply = Wait(
        one,
        SiteID(SITE),
        ACME,
        now - timedelta(hours=2),
        closed_at=now - timedelta(hours=1),
        outcome="noreply",
        closed_by=BOB,
        wall_seconds=HOUR,
        working_seconds=HOUR,
    )
    await add_waits(
        bridge.repository,
        [
            replied(one, now, 72, 0.5, 0.5, first=True),
            replied(two, now, 60, 1, 1, first=True, by=BOB),
            replied(one, now, 48, 3, 2),
            replied(one, now, 40, 30, 20),
            replied(one, now, 20 * 24, 10, 10),
            open_late,
            noreply,
        ],
    )


def check_acme(figures: dict[str, Any]) -> None:
    assert figures["seller_id"] == "acme"
    assert figures["days"] == 7
    assert figures["target_hours"] == 24
    assert figures["conversations"] == 2
    assert figures["waits"] == {"replied": 4, "noreply": 1, "open": 1}
    assert figures["first_response"] == {
        "count": 2,
        "median_seconds": 0.5 * HOUR,
        "p90_seconds": 1 * HOUR,
    }
    assert figures["reply"] == {"count": 4, "median_seconds": 1 * HOUR, "p90_seconds": 30 * HOUR}
    assert figures["within_target"] == {"wall_clock": 0.75, "working_hours": 1.0}
    assert figures["late"] == {"total": 2, "replied": 1, "open": 1}
    assert figures["members"] == [
        {"user_id": ALICE, "replies": 3, "median_seconds": 3 * HOUR},
        {"user_id": BOB, "replies": 1, "median_seconds": 1 * HOUR},
    ]
    assert len(figures["per_day"]) == 7
    assert sum(day["replies"] for day in figures["per_day"]) == 4


async def test_the_stats_routes_and_the_widgets_reply_time(
    runner: BridgeRunner, marketplace: MarketplaceClient, sites: Sites
) -> None:
    bridge = await runner.start()
    await marketplace.ok("PUT", "/sellers/acme", {"name": "ACME"})
    await marketplace.ok("PUT", "/sellers/quiet", {"name": "Quiet"})
    site = SiteID(SITE)
    created = datetime.now(UTC) - timedelta(days=30)
    one = await stored_conversation(bridge.repository, site, ACME, BuyerID("anna"), "p1", created)
    two = await stored_conversation(bridge.repository, site, ACME, BuyerID("ben"), "p2", created)
    quiet = await stored_conversation(
        bridge.repository, site, SellerID("quiet"), BuyerID("anna"), "p3", created
    )
    await acme_waits(bridge, one, two)
    now = datetime.now(UTC)
    await add_waits(
        bridge.repository,
        [replied(quiet, now, 5, 0.2, 0.2, first=True, seller_id=SellerID("quiet"))],
    )

    check_acme(await marketplace.ok("GET", "/sellers/acme/stats", params={"days": "7"}))
    default = await marketplace.ok("GET", "/sellers/acme/stats")
    assert default["days"] == 30
    assert default["reply"]["count"] == 5  # the reply from 20 days ago is in
    ranked = await marketplace.ok("GET", "/stats", params={"days": "7"})
    assert ranked["days"] == 7
    by_seller = {figures["seller_id"]: figures for figures in ranked["sellers"]}
    assert set(by_seller) == {"acme", "quiet"}
    check_acme(by_seller["acme"])
    assert by_seller["quiet"]["reply"]["median_seconds"] == pytest.approx(0.2 * HOUR)

    for bad in ("0", "366", "week", "-3", "7.5"):
        for path in ("/sellers/acme/stats", "/stats"):
            status, error = await marketplace.call("GET", path, params={"days": bad})
            assert status == 400, (path, bad, error)
            assert "1 to 365" in error["error"]
    status, error = await marketplace.call("GET", "/sellers/nobody/stats")
    assert (status, error["errcode"]) == (404, "BAZAAR_UNKNOWN_SELLER")

    # The widget: acme's median over 30 days (0.5, 1, 3, 10, 30 h → 3 h) as a friendly
    # step; quiet has a single reply, too few to tell.
    anna = BuyerClient(runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "anna"))
    try:
        assert (await anna.ok("GET", "/sellers/acme"))["usually_replies_within_minutes"] == 180
        assert (await anna.ok("GET", "/sellers/quiet"))["usually_replies_within_minutes"] is None
    finally:
        await anna.close()


async def test_stats_in_the_management_room(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    first, second = await two_conversations(marketplace, owner)
    await acme_waits(
        bridge,
        ConversationID(first["conversation_id"]),
        ConversationID(second["conversation_id"]),
    )
    space = await bridge.repository.seller_space(SiteID(SITE), ACME)
    assert space is not None
    room_id = space.management_id
    await owner.wait_until(lambda: room_id in owner.invites, what="the management room")
    await owner.accept_invite(room_id)

    async def answer(text: str, msgtype: str = "m.notice") -> dict[str, Any]:
        seen = len(owner.messages(room_id))
        await owner.send_text(room_id, text)
        event: dict[str, Any] = await owner.wait_until(
            lambda: next(
                (
                    m
                    for m in owner.messages(room_id)[seen:]
                    if m["content"].get("msgtype") == msgtype
                ),
                None,
            ),
            what=f"the {msgtype} answering {text}",
        )
        return event

    seen = len(owner.messages(room_id))
    notice = (await answer("!stats 7"))["content"]["body"]
    lines = notice.splitlines()
    assert lines[0] == "Response times, last 7 days (target 24 h):"
    assert "Conversations: 2" in lines
    assert "First response: median 30 min, p90 1 h (2 answered)" in lines
    assert "Reply time: median 1 h, p90 1 d 6 h (4 replies)" in lines
    assert "Within 24 h: 75 % in wall-clock time, 100 % in working hours" in lines
    assert "Late: 2 (1 answered late, 1 still waiting)" in lines
    assert f"  {ALICE}: 3 replies, median 3 h" in lines
    assert f"  {BOB}: 1 reply, median 1 h" in lines

    image = await owner.wait_until(
        lambda: next(
            (m for m in owner.messages(room_id)[seen:] if m["content"].get("msgtype") == "m.image"),
            None,
        ),
        what="the chart",
    )
    content = image["content"]
    assert content["info"]["mimetype"] == "image/png"
    status, data = await owner.download(content["url"])
    assert status == 200
    chart = Image.open(io.BytesIO(data))
    assert chart.format == "PNG"
    assert chart.size == (800, 400)
    assert (content["info"]["w"], content["info"]["h"]) == (800, 400)

    bad = (await answer("!stats forever"))["content"]["body"]
    assert bad.startswith("Say !stats, or !stats <days> with a whole number from 1 to 365."), bad
    assert "!stats [days]" in bad
    helped = (await answer("!help"))["content"]["body"]
    assert "!stats [days] — response times" in helped
