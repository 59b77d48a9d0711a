"""Response-time figures over a seller's waits, computed without I/O: what `!stats`, the
stats API and the widget's "usually replies within …" tell (DESIGN.md, "Response time");
`core/stats.py` says them and serves them.

Percentiles are nearest-rank: of n values sorted ascending, the p-th percentile is the
value at rank ceil(p / 100 × n) (1-based), always one of the values measured. The median
is the 50th percentile so defined: for an even count it is the lower of the two middle
values. A figure over no waits is None (JSON null), never zero.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from typing_extensions import TypedDict

from bridge.core.hours import zone
from bridge.core.ids import ConversationID, SellerID, SiteID, UserID
from bridge.core.models import Seller

REPLY_STEPS_MINUTES = (5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 4320, 10080)
WIDGET_MIN_REPLIES = 3

REPLIED = "replied"
NOREPLY = "noreply"


@dataclass(frozen=True)
class Wait:
    """A buyer waiting for an answer, as the figures read it. `outcome` is None while the
    wait is open, "replied" or "noreply" (left out of the figures) once closed."""

    conversation_id: ConversationID
    site: SiteID
    seller_id: SellerID
    opened_at: datetime
    first: bool = False
    closed_at: datetime | None = None
    outcome: str | None = None
    closed_by: UserID | None = None
    wall_seconds: float | None = None
    working_seconds: float | None = None


def nearest_rank(values: Sequence[float], percent: float) -> float | None:
    """The nearest-rank percentile: the value at rank ceil(percent / 100 × n) of the values
    sorted ascending (rank 1 for percent 0); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float | None:
    """The nearest-rank median (the lower middle value for an even count); None if empty."""
    return nearest_rank(values, 50)


def _share(hits: int, total: int) -> float | None:
    return hits / total if total else None


class DurationsView(TypedDict):
    """How long a set of waits took, in seconds; null over no waits."""

    count: int
    median_seconds: float | None
    p90_seconds: float | None


class WaitCountsView(TypedDict):
    """The waits opened in the period, by how they ended."""

    replied: int
    noreply: int
    open: int


class WithinTargetView(TypedDict):
    """The share (0 to 1) of replied waits answered within the target; null over none."""

    wall_clock: float | None
    working_hours: float | None


class LateWaitsView(TypedDict):
    """Waits replied after the target, and those still open and already past it."""

    total: int
    replied: int
    open: int


class MemberFiguresView(TypedDict):
    """One member's replies in the period and their median reply time."""

    user_id: UserID
    replies: int
    median_seconds: float | None


class DayFiguresView(TypedDict):
    """One day of the chart (the seller's local day the waits opened on)."""

    date: str
    replies: int
    median_seconds: float | None
    within_target: float | None


class ResponseFiguresView(TypedDict):
    """A seller's response times over the days asked for."""

    seller_id: SellerID
    days: int
    since: str
    until: str
    target_hours: float
    conversations: int
    waits: WaitCountsView
    first_response: DurationsView
    reply: DurationsView
    within_target: WithinTargetView
    late: LateWaitsView
    members: list[MemberFiguresView]
    per_day: list[DayFiguresView]


class SiteFigures(TypedDict):
    """Every seller's response times over the same days, to rank them."""

    days: int
    sellers: list[ResponseFiguresView]


@dataclass(frozen=True)
class Durations:
    """How long a set of waits took, in seconds: nearest-rank median and 90th percentile."""

    count: int
    median_seconds: float | None
    p90_seconds: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Durations:
        return cls(len(seconds), median(seconds), nearest_rank(seconds, 90))

    def to_json(self) -> DurationsView:
        return {
            "count": self.count,
            "median_seconds": self.median_seconds,
            "p90_seconds": self.p90_seconds,
        }


@dataclass(frozen=True)
class MemberFigures:
    user_id: UserID
    replies: int
    median_seconds: float | None


@dataclass(frozen=True)
class DayFigures:
    """One day of the chart (the seller's local day the waits opened on)."""

    day: date
    replies: int
    median_seconds: float | None
    within_target: float | None


@dataclass(frozen=True)
class ResponseFigures:
    """A seller's response times over the `days` before `until`.

    `conversations` counts those with a wait opened in the period (a buyer message that
    found none open). First response covers conversations' first waits, reply time every
    replied wait; both in wall-clock seconds. The shares within target are of the replied
    waits, measured in wall-clock time and in the seller's working hours. Late waits are
    those replied after the target, plus those still open and already past it (wall clock).
    """

    site: SiteID
    seller_id: SellerID
    days: int
    since: datetime
    until: datetime
    target_seconds: float
    conversations: int
    replied: int
    noreply: int
    open: int
    first_response: Durations
    reply: Durations
    within_target_wall: float | None
    within_target_working: float | None
    late_replied: int
    late_open: int
    members: tuple[MemberFigures, ...]
    per_day: tuple[DayFigures, ...]

    @property
    def late(self) -> int:
        return self.late_replied + self.late_open

    def to_json(self) -> ResponseFiguresView:
        """The API's shape: durations in seconds, shares from 0 to 1, null over no waits."""
        return {
            "seller_id": self.seller_id,
            "days": self.days,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "target_hours": self.target_seconds / 3600,
            "conversations": self.conversations,
            "waits": {"replied": self.replied, "noreply": self.noreply, "open": self.open},
            "first_response": self.first_response.to_json(),
            "reply": self.reply.to_json(),
            "within_target": {
                "wall_clock": self.within_target_wall,
                "working_hours": self.within_target_working,
            },
            "late": {"total": self.late, "replied": self.late_replied, "open": self.late_open},
            "members": [
                {"user_id": m.user_id, "replies": m.replies, "median_seconds": m.median_seconds}
                for m in self.members
            ],
            "per_day": [
                {
                    "date": d.day.isoformat(),
                    "replies": d.replies,
                    "median_seconds": d.median_seconds,
                    "within_target": d.within_target,
                }
                for d in self.per_day
            ],
        }


def response_figures(
    seller: Seller,
    waits: Sequence[Wait],
    *,
    until: datetime,
    days: int,
    target_hours: float,
) -> ResponseFigures:
    """The figures of `seller` over the `days` before `until`, from its waits: those opened
    in the period count; an open wait opened earlier counts only as late."""
    since = until - timedelta(days=days)
    target = target_hours * 3600
    in_period = [w for w in waits if since <= w.opened_at <= until]
    replied = [w for w in in_period if w.outcome == REPLIED and w.wall_seconds is not None]
    walls = [w.wall_seconds for w in replied if w.wall_seconds is not None]
    working = [w.working_seconds for w in replied if w.working_seconds is not None]
    still_open = [w for w in waits if w.outcome is None and w.opened_at <= until]

    by_member: dict[UserID, list[float]] = defaultdict(list)
    for wait in replied:
        if wait.closed_by is not None and wait.wall_seconds is not None:
            by_member[wait.closed_by].append(wait.wall_seconds)
    members = sorted(
        (MemberFigures(user, len(times), median(times)) for user, times in by_member.items()),
        key=lambda m: (-m.replies, m.user_id),
    )

    local = zone(seller.timezone)
    by_day: dict[date, list[float]] = defaultdict(list)
    for wait in replied:
        if wait.wall_seconds is not None:
            by_day[wait.opened_at.astimezone(local).date()].append(wait.wall_seconds)
    last_day = until.astimezone(local).date()
    per_day = tuple(
        DayFigures(
            day,
            len(by_day[day]),
            median(by_day[day]),
            _share(sum(1 for s in by_day[day] if s <= target), len(by_day[day])),
        )
        for day in (last_day - timedelta(days=back) for back in range(days - 1, -1, -1))
    )

    return ResponseFigures(
        site=seller.site,
        seller_id=seller.seller_id,
        days=days,
        since=since,
        until=until,
        target_seconds=target,
        conversations=len({w.conversation_id for w in in_period}),
        replied=len(replied),
        noreply=sum(1 for w in in_period if w.outcome == NOREPLY),
        open=len(still_open),
        first_response=Durations.of(
            [w.wall_seconds for w in replied if w.first and w.wall_seconds is not None]
        ),
        reply=Durations.of(walls),
        within_target_wall=_share(sum(1 for s in walls if s <= target), len(walls)),
        within_target_working=_share(sum(1 for s in working if s <= target), len(working)),
        late_replied=sum(1 for s in walls if s > target),
        late_open=sum(1 for w in still_open if (until - w.opened_at).total_seconds() > target),
        members=tuple(members),
        per_day=per_day,
    )


def friendly_minutes(seconds: float) -> int:
    """A median reply time rounded up to a step a buyer reads at a glance: 5, 10, 15,
    30 min, 1, 2, 3, 6, 12, 24 h, 2, 3, 7 days, then whole days."""
    minutes = seconds / 60
    for step in REPLY_STEPS_MINUTES:
        if minutes <= step:
            return step
    return math.ceil(minutes / 1440) * 1440


def usually_replies_within_minutes(waits: Sequence[Wait]) -> int | None:
    """The widget's figure: the median wall-clock reply time of the replied waits, rounded
    up to a friendly step; None with fewer than WIDGET_MIN_REPLIES of them."""
    times = [w.wall_seconds for w in waits if w.outcome == REPLIED and w.wall_seconds is not None]
    middle = median(times)
    if len(times) < WIDGET_MIN_REPLIES or middle is None:
        return None
    return friendly_minutes(middle)
