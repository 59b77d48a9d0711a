"""Whether a seller answers now, and from when, as a buyer is told before writing.

`availability` is the one rule; `availability_json` is its published shape, the part of
`GET /widget/v1/sellers/{seller_id}` that says "Online" or "Away · replies from 09:00".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from typing_extensions import TypedDict

from bridge.core.models import Seller
from bridge.core.views import timestamp


class AvailabilityView(TypedDict):
    """Whether the seller answers now, and if not, from when (UTC, or null: no hours)."""

    open_now: bool
    next_open_at: str | None


@dataclass(frozen=True)
class Availability:
    """A seller's state at one moment: open now, or closed until `next_open_at` (None
    when the week has no hours at all, or when open now)."""

    open_now: bool
    next_open_at: datetime | None


def availability(seller: Seller, at: datetime) -> Availability:
    """The seller's state at `at` (an aware time); no hours means always open."""
    hours = seller.working_hours
    if hours.is_open(at):
        return Availability(open_now=True, next_open_at=None)
    return Availability(open_now=False, next_open_at=hours.next_open(at))


def availability_json(seller: Seller, at: datetime) -> AvailabilityView:
    """`{"open_now": bool, "next_open_at": ISO time in UTC ("…Z") or null}`; the widget
    shows the time in the buyer's own zone."""
    state = availability(seller, at)
    opens = state.next_open_at
    return {
        "open_now": state.open_now,
        "next_open_at": timestamp(opens.astimezone(UTC) if opens else None),
    }
