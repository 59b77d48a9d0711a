"""A seller's working hours: a time zone and a few ranges per weekday.

`{"mon": [["09:00", "13:00"], ["14:00", "18:00"]], ...}`; a missing day is closed, no
hours at all means always open. A range may end at "24:00" and never crosses midnight
(say "fri": [["22:00", "24:00"]], "sat": [["00:00", "02:00"]] for a night shift).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.errors import BadRequest

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_RANGES_PER_DAY = 6
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$|^24:00$")

# The published shape: each open day ("mon"…"sun") to its ["HH:MM", "HH:MM"] ranges, sorted;
# a closed day is left out.
WeeklyHoursView = dict[str, list[list[str]]]


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def zone(name: str) -> ZoneInfo:
    """The IANA time zone, or BAZAAR_BAD_TIMEZONE."""
    try:
        if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(
            f"'timezone' must be an IANA time zone such as Europe/Vilnius, not {name!r}",
            "BAZAAR_BAD_TIMEZONE",
        ) from None


def _at(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """The instant (in UTC) a local day's clock time names; "24:00" is the next midnight."""
    if minutes >= 24 * 60:
        local = datetime.combine(day + timedelta(days=1), time(0), tz)
    else:
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tz)
    return local.astimezone(UTC)


@dataclass(frozen=True)
class WeeklyHours:
    """Open ranges per weekday (0 = Monday), in minutes since midnight, sorted, apart."""

    days: tuple[tuple[tuple[int, int], ...], ...]

    @classmethod
    def parse(cls, raw: Any) -> WeeklyHours:
        """From the API's JSON; anything malformed or overlapping is BAZAAR_BAD_HOURS."""

        def bad(why: str) -> BadRequest:
            return BadRequest(f"'hours' {why}", "BAZAAR_BAD_HOURS")

        if not isinstance(raw, Mapping):
            raise bad('must be an object such as {"mon": [["09:00", "18:00"]]}')
        unknown = [key for key in raw if key not in DAYS]
        if unknown:
            raise bad(f"has an unknown day {str(unknown[0])[:20]!r}: use {', '.join(DAYS)}")
        days: list[tuple[tuple[int, int], ...]] = []
        for day in DAYS:
            ranges = raw.get(day, [])
            if not isinstance(ranges, list) or len(ranges) > MAX_RANGES_PER_DAY:
                raise bad(f"'{day}' must be a list of at most {MAX_RANGES_PER_DAY} ranges")
            parsed: list[tuple[int, int]] = []
            for entry in ranges:
                if (
                    not isinstance(entry, list)
                    or len(entry) != 2
                    or not all(isinstance(c, str) and _CLOCK.match(c) for c in entry)
                ):
                    raise bad(f'\'{day}\' has a range that is not ["HH:MM", "HH:MM"]')
                start, end = _minutes(entry[0]), _minutes(entry[1])
                if start >= end:
                    raise bad(f"'{day}' has a range that ends before it starts: {entry}")
                parsed.append((start, end))
            parsed.sort()
            for (_, end), (start, _) in itertools.pairwise(parsed):
                if start < end:
                    raise bad(f"'{day}' has ranges that overlap")
            days.append(tuple(parsed))
        return cls(tuple(days))

    def to_json(self) -> WeeklyHoursView:
        return {
            DAYS[index]: [[_clock(start), _clock(end)] for start, end in ranges]
            for index, ranges in enumerate(self.days)
            if ranges
        }


@dataclass(frozen=True)
class WorkingHours:
    """When a seller answers: weekly hours in their time zone (None: always)."""

    timezone: str = "UTC"
    weekly: WeeklyHours | None = None

    def is_open(self, at: datetime) -> bool:
        if self.weekly is None:
            return True
        local = at.astimezone(ZoneInfo(self.timezone))
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.weekly.days[local.weekday()])

    def next_open(self, at: datetime) -> datetime | None:
        """When the seller is next open from `at` (`at` itself when open now); None when
        the week has no hours at all."""
        if self.weekly is None:
            return at
        if not any(self.weekly.days):
            return None
        tz = ZoneInfo(self.timezone)
        local = at.astimezone(tz)
        minute = local.hour * 60 + local.minute
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            for start, end in self.weekly.days[day.weekday()]:
                if offset == 0 and end <= minute:
                    continue
                if offset == 0 and start <= minute:
                    return at
                opening = datetime.combine(day, time(start // 60, start % 60), tz)
                # A clock time skipped by a DST change resolves forward, as a wall clock does.
                return opening.astimezone(at.tzinfo) if at.tzinfo else opening
        return None

    def working_seconds(self, start: datetime, end: datetime) -> float:
        """How much of `start`..`end` lies within the weekly hours, in the seller's zone;
        with no hours at all, the whole length. Seconds as they pass (a range across a DST
        change is as long as it really is); nothing when `end` is not after `start`."""
        if end <= start:
            return 0.0
        if self.weekly is None:
            return (end - start).total_seconds()
        tz = ZoneInfo(self.timezone)
        total = 0.0
        day = start.astimezone(tz).date()
        last = end.astimezone(tz).date()
        while day <= last:
            for opens, closes in self.weekly.days[day.weekday()]:
                range_start = _at(day, opens, tz)
                range_end = _at(day, closes, tz)
                overlap = min(end, range_end) - max(start, range_start)
                if overlap > timedelta(0):
                    total += overlap.total_seconds()
            day += timedelta(days=1)
        return total

    def local_day(self, at: datetime) -> str:
        """The seller's calendar day at `at` (ISO), for "once a day"."""
        return at.astimezone(ZoneInfo(self.timezone)).date().isoformat()
