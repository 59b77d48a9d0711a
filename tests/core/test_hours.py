"""Working hours: what a seller may write as hours and time zone, and when they are open,
across a week's end, in a zone far from UTC and over a DST change in Vilnius."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.core.availability import availability, availability_json
from bridge.core.hours import WeeklyHours, WorkingHours, zone
from bridge.core.ids import SellerID, SiteID
from bridge.core.models import Seller
from bridge.errors import BadRequest


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"mon": [["09:00", "13:00"], ["12:00", "18:00"]]}, "overlap"),
        ({"mon": [["9:00", "13:00"]]}, "HH:MM"),
        ({"mon": [["09:00", "25:00"]]}, "HH:MM"),
        ({"mon": [["09:60", "10:00"]]}, "HH:MM"),
        ({"mon": [["13:00", "09:00"]]}, "ends before it starts"),
        ({"mon": [["09:00", "09:00"]]}, "ends before it starts"),
        ({"monday": [["09:00", "13:00"]]}, "unknown day"),
        ({"mon": [[f"{h:02d}:00", f"{h:02d}:30"] for h in range(7)]}, "at most 6"),
        ({"mon": ["09:00", "13:00"]}, "HH:MM"),
        ({"mon": [["09:00"]]}, "HH:MM"),
        ({"mon": "09:00-13:00"}, "at most 6"),
        ([["09:00", "13:00"]], "must be an object"),
    ],
)
def test_bad_hours_are_refused_saying_what_is_wrong(raw: Any, says: str) -> None:
    with pytest.raises(BadRequest) as refused:
        WeeklyHours.parse(raw)
    assert refused.value.errcode == "BAZAAR_BAD_HOURS"
    assert says in str(refused.value)


def test_good_hours_come_back_as_written_sorted_with_closed_days_left_out() -> None:
    raw = {"mon": [["14:00", "18:00"], ["09:00", "13:00"]], "fri": [["22:00", "24:00"]]}
    assert WeeklyHours.parse(raw).to_json() == {
        "mon": [["09:00", "13:00"], ["14:00", "18:00"]],
        "fri": [["22:00", "24:00"]],
    }
    # Ranges that touch do not overlap.
    assert WeeklyHours.parse({"tue": [["09:00", "12:00"], ["12:00", "13:00"]]})


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", "/usr/share/zoneinfo/UTC"])
def test_an_unknown_time_zone_is_refused(name: str) -> None:
    with pytest.raises(BadRequest) as refused:
        zone(name)
    assert refused.value.errcode == "BAZAAR_BAD_TIMEZONE"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


WEEKEND_SHIFT = WorkingHours(
    "UTC",
    WeeklyHours.parse({"mon": [["09:00", "17:00"]], "sun": [["20:00", "24:00"]]}),
)


def test_open_and_next_open_across_the_end_of_the_week() -> None:
    saturday_noon = utc(2026, 3, 7, 12, 0)
    assert not WEEKEND_SHIFT.is_open(saturday_noon)
    assert WEEKEND_SHIFT.next_open(saturday_noon) == utc(2026, 3, 8, 20, 0)  # Sunday evening
    sunday_late = utc(2026, 3, 8, 23, 59)
    assert WEEKEND_SHIFT.is_open(sunday_late)
    assert WEEKEND_SHIFT.next_open(sunday_late) == sunday_late
    # After Sunday's shift the next opening is Monday morning, the next week.
    monday_night = utc(2026, 3, 9, 17, 0)
    assert not WEEKEND_SHIFT.is_open(monday_night)
    assert WEEKEND_SHIFT.next_open(monday_night) == utc(2026, 3, 15, 20, 0)
    # The end of a range is closed: 17:00 is after hours.
    assert WEEKEND_SHIFT.is_open(utc(2026, 3, 9, 16, 59))


def test_hours_are_kept_in_the_sellers_zone() -> None:
    tokyo = WorkingHours("Asia/Tokyo", WeeklyHours.parse({"mon": [["09:00", "18:00"]]}))
    # Sunday 23:30 UTC is Monday 08:30 in Tokyo: closed, opens in half an hour.
    sunday = utc(2026, 3, 1, 23, 30)
    assert not tokyo.is_open(sunday)
    assert tokyo.next_open(sunday) == utc(2026, 3, 2, 0, 0)
    assert tokyo.local_day(sunday) == "2026-03-02"
    assert tokyo.is_open(utc(2026, 3, 2, 0, 0))
    assert not tokyo.is_open(utc(2026, 3, 2, 9, 0))  # 18:00 in Tokyo


def test_no_hours_is_always_open_and_an_empty_week_never_opens() -> None:
    assert WorkingHours().is_open(utc(2026, 3, 1, 3, 0))
    never = WorkingHours("UTC", WeeklyHours.parse({}))
    assert not never.is_open(utc(2026, 3, 2, 12, 0))
    assert never.next_open(utc(2026, 3, 2, 12, 0)) is None


VILNIUS = WorkingHours("Europe/Vilnius", WeeklyHours.parse({"sun": [["02:00", "05:00"]]}))


def test_at_the_spring_dst_change_in_vilnius_the_skipped_hour_opens_forward() -> None:
    # On Sunday 29 March 2026 Vilnius clocks go from 03:00 to 04:00 (UTC+2 to UTC+3).
    before = utc(2026, 3, 28, 12, 0)
    assert VILNIUS.next_open(before) == utc(2026, 3, 29, 0, 0)  # 02:00 EET
    assert VILNIUS.is_open(utc(2026, 3, 29, 0, 30))  # 02:30 EET
    assert VILNIUS.is_open(utc(2026, 3, 29, 1, 30))  # 04:30 EEST
    assert not VILNIUS.is_open(utc(2026, 3, 29, 2, 0))  # 05:00 EEST: closed
    nine_am = WorkingHours("Europe/Vilnius", WeeklyHours.parse({"sun": [["09:00", "10:00"]]}))
    # 09:00 on the day of the change is 06:00 UTC (summer time), not 07:00.
    assert nine_am.next_open(before) == utc(2026, 3, 29, 6, 0)
    assert nine_am.next_open(utc(2026, 3, 22, 12, 0)) == utc(2026, 3, 29, 6, 0)


def test_at_the_autumn_dst_change_in_vilnius_hours_follow_the_wall_clock() -> None:
    # On Sunday 25 October 2026 clocks go back from 04:00 to 03:00 (UTC+3 to UTC+2).
    nine_am = WorkingHours("Europe/Vilnius", WeeklyHours.parse({"sun": [["09:00", "10:00"]]}))
    assert nine_am.next_open(utc(2026, 10, 24, 12, 0)) == utc(2026, 10, 25, 7, 0)
    assert nine_am.is_open(utc(2026, 10, 25, 7, 30))
    assert not nine_am.is_open(utc(2026, 10, 25, 6, 30))  # 08:30 after the change
    assert nine_am.local_day(utc(2026, 10, 24, 22, 30)) == "2026-10-25"


def seller(hours: WeeklyHours | None, timezone: str = "Europe/Vilnius") -> Seller:
    return Seller(SiteID("shop"), SellerID("acme"), "ACME", "en", timezone=timezone, hours=hours)


def test_the_sellers_state_for_the_widget() -> None:
    weekdays = WeeklyHours.parse({"mon": [["09:00", "18:00"]], "tue": [["09:00", "18:00"]]})
    sunday = utc(2026, 3, 1, 12, 0)
    assert availability_json(seller(weekdays), sunday) == {
        "open_now": False,
        "next_open_at": "2026-03-02T07:00:00Z",
    }
    monday = utc(2026, 3, 2, 8, 0)
    assert availability(seller(weekdays), monday).open_now
    assert availability_json(seller(weekdays), monday) == {"open_now": True, "next_open_at": None}
    assert availability_json(seller(None), sunday) == {"open_now": True, "next_open_at": None}
    assert availability_json(seller(WeeklyHours.parse({})), sunday) == {
        "open_now": False,
        "next_open_at": None,
    }
    # In any zone the moment is given in UTC; the widget shows it in the buyer's.
    # Monday 12:00 UTC is 07:00 in New York: the shop opens at 09:00 there, 14:00 UTC.
    new_york = availability_json(seller(weekdays, "America/New_York"), sunday + timedelta(days=1))
    assert new_york == {"open_now": False, "next_open_at": "2026-03-02T14:00:00Z"}
