"""Response-time figures over waits the test made: nearest-rank medians and p90, shares in
both clocks, late waits, per member and per day, empty periods; `!stats` and the widget's
figure over an in-memory store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from bridge.core.commands import BadCommand, ManagementCall
from bridge.core.figures import (
    ResponseFigures,
    Wait,
    friendly_minutes,
    median,
    nearest_rank,
    response_figures,
    usually_replies_within_minutes,
)
from bridge.core.ids import ConversationID, RoomID, SellerID, SiteID, UserID
from bridge.core.models import Attachment, Member, Seller
from bridge.core.stats import (
    Chart,
    ResponseStats,
    duration_text,
    figures_notice,
    parse_days,
    share_text,
)
from bridge.errors import NotFound

SITE = SiteID("shop")
ACME = SellerID("acme")
ALICE = UserID("@alice:hs")
BOB = UserID("@bob:hs")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = 3600.0
SELLER = Seller(SITE, ACME, "ACME", "en")


def replied(
    conversation: str,
    opened_hours_ago: float,
    wall_hours: float,
    *,
    working_hours: float | None = None,
    first: bool = False,
    by: UserID = ALICE,
    seller: SellerID = ACME,
) -> Wait:
    opened = NOW - timedelta(hours=opened_hours_ago)
    return Wait(
        ConversationID(conversation),
        SITE,
        seller,
        opened,
        first=first,
        closed_at=opened + timedelta(hours=wall_hours),
        outcome="replied",
        closed_by=by,
        wall_seconds=wall_hours * HOUR,
        working_seconds=(working_hours if working_hours is not None else wall_hours) * HOUR,
    )


def still_open(conversation: str, opened_hours_ago: float, first: bool = False) -> Wait:
    return Wait(
        ConversationID(conversation), SITE, ACME, NOW - timedelta(hours=opened_hours_ago), first
    )


def noreply(conversation: str, opened_hours_ago: float) -> Wait:
    opened = NOW - timedelta(hours=opened_hours_ago)
    return Wait(
        ConversationID(conversation),
        SITE,
        ACME,
        opened,
        closed_at=opened + timedelta(hours=1),
        outcome="noreply",
        closed_by=BOB,
        wall_seconds=HOUR,
        working_seconds=HOUR,
    )


def figures(waits: list[Wait], days: int = 30, seller: Seller = SELLER) -> ResponseFigures:
    return response_figures(seller, waits, until=NOW, days=days, target_hours=24)


def test_nearest_rank_percentiles_are_values_measured() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert median(values) == 3.0
    assert nearest_rank(values, 90) == 5.0  # ceil(0.9 × 5) = rank 5
    assert nearest_rank(values, 20) == 1.0  # ceil(0.2 × 5) = rank 1
    assert nearest_rank(values, 0) == 1.0
    # An even count: the lower middle value, never an average of two.
    assert median([10.0, 20.0, 30.0, 40.0]) == 20.0
    assert nearest_rank([float(n) for n in range(1, 11)], 90) == 9.0  # rank 9 of 10
    assert nearest_rank([float(n) for n in range(1, 12)], 90) == 10.0  # ceil(9.9) = rank 10
    assert median([]) is None
    assert nearest_rank([], 90) is None


WAITS = [
    # Three conversations' first waits, Alice answers two, Bob one.
    replied("c1", 50, 1, first=True),
    replied("c2", 40, 3, working_hours=2, first=True),
    replied("c3", 30, 30, working_hours=10, first=True, by=BOB),
    # Later waits in c1: Alice again, once late in both clocks.
    replied("c1", 20, 2),
    replied("c1", 10, 26, working_hours=25),
    # Closed without a reply: left out of the figures, its conversation still counted.
    noreply("c4", 5),
    # Open: one still within the target, one past it.
    still_open("c5", 2, first=True),
    still_open("c6", 25, first=True),
]


def test_figures_over_waits() -> None:
    found = figures(WAITS)
    assert found.conversations == 6
    assert (found.replied, found.noreply, found.open) == (5, 1, 2)
    # First response over the first waits: 1, 3, 30 h.
    assert found.first_response.count == 3
    assert found.first_response.median_seconds == 3 * HOUR
    assert found.first_response.p90_seconds == 30 * HOUR
    # Every reply: 1, 2, 3, 26, 30 h.
    assert found.reply.count == 5
    assert found.reply.median_seconds == 3 * HOUR
    assert found.reply.p90_seconds == 30 * HOUR
    # Within 24 h: 3 of 5 by the wall clock; in working hours 1, 2, 2, 10, 25 → 4 of 5.
    assert found.within_target_wall == pytest.approx(0.6)
    assert found.within_target_working == pytest.approx(0.8)
    # Late: the two replies after 24 h, and c6 open for 25 h.
    assert (found.late_replied, found.late_open, found.late) == (2, 1, 3)
    assert [(m.user_id, m.replies, m.median_seconds) for m in found.members] == [
        (ALICE, 4, 2 * HOUR),
        (BOB, 1, 30 * HOUR),
    ]


def test_per_day_uses_the_sellers_day_the_wait_opened() -> None:
    # 23:30 and 00:30 UTC on 29 Nov are two days in UTC, one in Vilnius (UTC+2).
    late_night = datetime(2026, 11, 28, 23, 30, tzinfo=UTC)
    waits = [
        replied("a", (NOW - late_night).total_seconds() / HOUR, 2),
        replied("b", (NOW - late_night).total_seconds() / HOUR - 1, 30),
        replied("c", (NOW - late_night).total_seconds() / HOUR - 1.5, 4),
    ]
    utc_days = {d.day: d for d in figures(waits, days=7).per_day}
    assert len(utc_days) == 7
    assert list(utc_days)[-1] == date(2026, 12, 1)
    assert utc_days[date(2026, 11, 28)].replies == 1
    assert utc_days[date(2026, 11, 28)].median_seconds == 2 * HOUR
    assert utc_days[date(2026, 11, 28)].within_target == 1.0
    assert utc_days[date(2026, 11, 29)].replies == 2
    assert utc_days[date(2026, 11, 29)].median_seconds == 4 * HOUR  # lower of 4 and 30
    assert utc_days[date(2026, 11, 29)].within_target == 0.5
    assert utc_days[date(2026, 11, 30)].median_seconds is None
    assert utc_days[date(2026, 11, 30)].within_target is None

    vilnius = Seller(SITE, ACME, "ACME", "en", timezone="Europe/Vilnius")
    local_days = {d.day: d for d in figures(waits, days=7, seller=vilnius).per_day}
    assert local_days[date(2026, 11, 29)].replies == 3
    assert local_days[date(2026, 11, 29)].median_seconds == 4 * HOUR
    assert local_days[date(2026, 11, 28)].replies == 0


def test_an_empty_period_gives_null_figures_not_zeros() -> None:
    old = [replied("c1", 24 * 40, 1, first=True)]
    for waits in ([], old):
        found = figures(waits)
        assert found.conversations == 0
        assert found.replied == 0
        assert found.first_response.median_seconds is None
        assert found.first_response.p90_seconds is None
        assert found.reply.median_seconds is None
        assert found.within_target_wall is None
        assert found.within_target_working is None
        assert found.members == ()
        assert len(found.per_day) == 30
        assert all(d.median_seconds is None for d in found.per_day)
        body = found.to_json()
        assert body["reply"] == {"count": 0, "median_seconds": None, "p90_seconds": None}
        assert body["within_target"] == {"wall_clock": None, "working_hours": None}
    # A wait opened before the period and still open is late, though not in the period.
    found = figures([still_open("old", 24 * 40)])
    assert (found.conversations, found.open, found.late_open) == (0, 1, 1)


def test_the_period_ends_the_days_before_now() -> None:
    waits = [replied("in", 24 * 2, 1), replied("out", 24 * 3 + 1, 5)]
    found = figures(waits, days=3)
    assert found.conversations == 1
    assert found.reply.median_seconds == HOUR
    assert found.since == NOW - timedelta(days=3)


def test_json_shape() -> None:
    body = figures(WAITS).to_json()
    assert body["seller_id"] == "acme"
    assert body["days"] == 30
    assert body["target_hours"] == 24
    assert body["waits"] == {"replied": 5, "noreply": 1, "open": 2}
    assert body["first_response"] == {
        "count": 3,
        "median_seconds": 3 * HOUR,
        "p90_seconds": 30 * HOUR,
    }
    assert body["late"] == {"total": 3, "replied": 2, "open": 1}
    assert body["members"][0] == {"user_id": ALICE, "replies": 4, "median_seconds": 2 * HOUR}
    assert len(body["per_day"]) == 30
    assert body["per_day"][-1]["date"] == "2026-12-01"


def test_readable_durations_and_shares() -> None:
    assert duration_text(None) == "—"
    assert duration_text(42) == "42 s"
    assert duration_text(45 * 60) == "45 min"
    assert duration_text(80 * 60) == "1 h 20 min"
    assert duration_text(2 * HOUR) == "2 h"
    assert duration_text(27 * HOUR) == "1 d 3 h"
    assert duration_text(48 * HOUR) == "2 d"
    assert share_text(0.8666) == "87 %"
    assert share_text(None) == "—"


def test_notice_text() -> None:
    text = figures_notice(figures(WAITS))
    assert "last 30 days (target 24 h)" in text
    assert "Conversations: 6" in text
    assert "First response: median 3 h, p90 1 d 6 h (3 answered)" in text
    assert "Reply time: median 3 h, p90 1 d 6 h (5 replies)" in text
    assert "Within 24 h: 60 % in wall-clock time, 80 % in working hours" in text
    assert "Late: 3 (2 answered late, 1 still waiting)" in text
    assert f"{ALICE}: 4 replies, median 2 h" in text
    assert f"{BOB}: 1 reply, median 1 d 6 h" in text
    assert "Closed with !noreply (not counted): 1" in text
    empty = figures_notice(figures([]))
    assert "First response: median —, p90 — (0 answered)" in empty
    assert "Within 24 h: — in wall-clock time, — in working hours" in empty


def test_days_are_whole_numbers_from_1_to_365() -> None:
    assert [parse_days(text) for text in ("1", "30", "365")] == [1, 30, 365]
    for bad in ("0", "366", "-1", "3.5", "abc", "٣", "1000", ""):
        assert parse_days(bad) is None


def test_the_widgets_figure_rounds_the_median_up_to_a_friendly_step() -> None:
    assert friendly_minutes(60) == 5
    assert friendly_minutes(5 * 60) == 5
    assert friendly_minutes(5 * 60 + 1) == 10
    assert friendly_minutes(16 * 60) == 30
    assert friendly_minutes(61 * 60) == 120
    assert friendly_minutes(4 * HOUR) == 360
    assert friendly_minutes(13 * HOUR) == 1440
    assert friendly_minutes(8 * 24 * HOUR) == 8 * 1440
    two = [replied("a", 5, 0.5), replied("b", 6, 1.5)]
    assert usually_replies_within_minutes(two) is None
    # Three replies (0.5, 1.5, 1.7 h): the median 1.5 h shows as "within 2 h"; an open
    # wait and a !noreply don't count.
    three = [*two, replied("c", 7, 1.7), still_open("d", 1), noreply("e", 3)]
    assert usually_replies_within_minutes(three) == 120


@dataclass
class FakeStatsStore:
    waits: list[Wait]
    sellers: list[Seller] = field(default_factory=lambda: [SELLER])
    queries: int = 0

    async def seller_waits_since(
        self, site: SiteID, seller_id: SellerID, since: datetime
    ) -> list[Wait]:
        self.queries += 1
        return [
            w
            for w in self.waits
            if w.site == site
            and w.seller_id == seller_id
            and (w.opened_at >= since or w.outcome is None)
        ]

    async def site_waits_since(self, site: SiteID, since: datetime) -> list[Wait]:
        self.queries += 1
        return [w for w in self.waits if w.site == site and (w.opened_at >= since or not w.outcome)]

    async def get_seller(self, site: SiteID, seller_id: SellerID) -> Seller | None:
        return next((s for s in self.sellers if (s.site, s.seller_id) == (site, seller_id)), None)

    async def list_sellers(self, site: SiteID) -> list[Seller]:
        return [s for s in self.sellers if s.site == site]


@dataclass
class FakeRooms:
    said: list[tuple[RoomID, str | Attachment, bytes | None]] = field(default_factory=list)

    async def send_notice(self, room_id: RoomID, text: str, key: str | None = None) -> None:
        self.said.append((room_id, text, None))

    async def send_bot_file(self, room_id: RoomID, attachment: Attachment, data: bytes) -> None:
        self.said.append((room_id, attachment, data))


def paint(found: ResponseFigures) -> Chart:
    return Chart(f"chart of {found.days} days".encode(), 800, 400)


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def stats_over(store: FakeStatsStore, rooms: FakeRooms, ticker: Ticker) -> ResponseStats:
    return ResponseStats(store, rooms, paint, 24, clock=lambda: NOW, monotonic=ticker)


ROOM = RoomID("!manage:hs")


def call(args: str) -> ManagementCall:
    return ManagementCall(ROOM, SELLER, Member(ALICE, "owner"), args)


async def test_stats_command_sends_the_notice_then_the_chart() -> None:
    rooms = FakeRooms()
    stats = stats_over(FakeStatsStore(WAITS), rooms, Ticker())
    assert await stats.command().run(call("")) is None
    (room, text, _), (image_room, attachment, data) = rooms.said
    assert room == image_room == ROOM
    assert isinstance(text, str)
    assert "Conversations: 6" in text
    assert "last 30 days" in text
    assert isinstance(attachment, Attachment)
    assert (attachment.content_type, attachment.width, attachment.height) == (
        "image/png",
        800,
        400,
    )
    assert data == b"chart of 30 days"
    assert attachment.size == len(data)

    rooms.said.clear()
    await stats.command().run(call("1"))
    assert "Conversations: 3" in str(rooms.said[0][1])  # c1, c4, c5 opened within a day

    for bad in ("0", "400", "week", "7 days"):
        with pytest.raises(BadCommand, match="from 1 to 365"):
            await stats.command().run(call(bad))


async def test_site_and_seller_figures() -> None:
    other = Seller(SITE, SellerID("other"), "Other", "en")
    store = FakeStatsStore(
        [*WAITS, replied("x", 3, 0.25, first=True, seller=other.seller_id)], [SELLER, other]
    )
    stats = stats_over(store, FakeRooms(), Ticker())
    site = await stats.site_figures(SITE, 30)
    assert store.queries == 1
    assert [(f.seller_id, f.conversations, f.reply.median_seconds) for f in site] == [
        (ACME, 6, 3 * HOUR),
        (other.seller_id, 1, 0.25 * HOUR),
    ]
    one = await stats.seller_figures(SITE, other.seller_id, 30)
    assert one.first_response.median_seconds == 0.25 * HOUR
    with pytest.raises(NotFound):
        await stats.seller_figures(SITE, SellerID("nobody"), 30)


async def test_the_widgets_figure_is_cached_a_few_minutes() -> None:
    store = FakeStatsStore([replied("a", 5, 0.5), replied("b", 6, 1.5), replied("c", 7, 1.7)])
    ticker = Ticker()
    stats = stats_over(store, FakeRooms(), ticker)
    assert await stats.usually_replies_within(SELLER) == 120
    store.waits.extend(replied(f"n{i}", 1, 0.05) for i in range(10))
    ticker.now = 60
    assert await stats.usually_replies_within(SELLER) == 120
    assert store.queries == 1
    ticker.now = 301
    assert await stats.usually_replies_within(SELLER) == 5
    assert store.queries == 2
