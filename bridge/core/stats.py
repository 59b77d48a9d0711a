"""Response-time reports: `!stats` with its chart, the stats API and the widget's "usually
replies within …", over the figures of `core/figures.py` (DESIGN.md, "Response time")."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bridge.core.commands import BadCommand, Command, ManagementCall
from bridge.core.figures import (
    ResponseFigures,
    Wait,
    response_figures,
    usually_replies_within_minutes,
)
from bridge.core.ids import RoomID, SellerID, SiteID
from bridge.core.models import Attachment, AttachmentKind, Seller
from bridge.core.seller_storage import WaitRecords
from bridge.errors import NotFound

DEFAULT_DAYS = 30
MAX_DAYS = 365
# The widget's figure: the median over this many days, shown once there are enough waits.
WIDGET_DAYS = 30
WIDGET_CACHE_SECONDS = 300.0
# Friendly steps for "usually replies within …", in minutes; past the last, whole days.

CHART_NAME = "response-times.png"
STATS_HELP = (f"!stats [days] — response times over the last days (default {DEFAULT_DAYS})",)
STATS_USAGE = f"Say !stats, or !stats <days> with a whole number from 1 to {MAX_DAYS}."


def duration_text(seconds: float | None) -> str:
    """ "1 h 20 min", "45 min", "30 s", "2 d 3 h"; "—" for no figure."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def share_text(share: float | None) -> str:
    """ "87 %"; "—" for no figure."""
    return "—" if share is None else f"{round(share * 100)} %"


def _replies(count: int) -> str:
    return "1 reply" if count == 1 else f"{count} replies"


def figures_notice(figures: ResponseFigures) -> str:
    """`!stats` in readable form."""
    target = f"{figures.target_seconds / 3600:g} h"
    lines = [f"Response times, last {figures.days} days (target {target}):"]
    lines.append(f"Conversations: {figures.conversations}")
    first, reply = figures.first_response, figures.reply
    lines.append(
        f"First response: median {duration_text(first.median_seconds)}, "
        f"p90 {duration_text(first.p90_seconds)} ({first.count} answered)"
    )
    lines.append(
        f"Reply time: median {duration_text(reply.median_seconds)}, "
        f"p90 {duration_text(reply.p90_seconds)} ({_replies(reply.count)})"
    )
    lines.append(
        f"Within {target}: {share_text(figures.within_target_wall)} in wall-clock time, "
        f"{share_text(figures.within_target_working)} in working hours"
    )
    lines.append(
        f"Late: {figures.late} ({figures.late_replied} answered late, "
        f"{figures.late_open} still waiting)"
    )
    if figures.members:
        lines.append("By member:")
        lines.extend(
            f"  {m.user_id}: {_replies(m.replies)}, median {duration_text(m.median_seconds)}"
            for m in figures.members
        )
    if figures.noreply:
        lines.append(f"Closed with !noreply (not counted): {figures.noreply}")
    return "\n".join(lines)


def parse_days(text: str) -> int | None:
    """`days` as the API and `!stats` take it: a whole number from 1 to MAX_DAYS."""
    if not (text.isascii() and text.isdigit()) or len(text) > 3:
        return None
    days = int(text)
    return days if 1 <= days <= MAX_DAYS else None


class StatsSellers(Protocol):
    async def get_seller(self, site: SiteID, seller_id: SellerID) -> Seller | None: ...

    async def list_sellers(self, site: SiteID) -> list[Seller]: ...


class StatsStore(WaitRecords, StatsSellers, Protocol):
    """The store as the figures use it."""


class StatsRooms(Protocol):
    async def send_notice(self, room_id: RoomID, text: str, key: str | None = None) -> None: ...

    async def send_bot_file(self, room_id: RoomID, attachment: Attachment, data: bytes) -> None: ...


@dataclass(frozen=True)
class Chart:
    """A PNG drawn from the figures (by `media/charts.py`)."""

    png: bytes
    width: int
    height: int


ChartPainter = Callable[[ResponseFigures], Chart]


class ResponseStats:
    """The figures, for `!stats`, the marketplace's API and the widget."""

    def __init__(
        self,
        store: StatsStore,
        rooms: StatsRooms,
        paint: ChartPainter,
        target_hours: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._rooms = rooms
        self._paint = paint
        self._target_hours = target_hours
        self._clock = clock
        self._monotonic = monotonic
        self._widget_cache: dict[tuple[SiteID, SellerID], tuple[float, int | None]] = {}

    def _since(self, now: datetime, days: int) -> datetime:
        return now - timedelta(days=days)

    async def for_seller(self, seller: Seller, days: int) -> ResponseFigures:
        now = self._clock()
        waits = await self._store.seller_waits_since(
            seller.site, seller.seller_id, self._since(now, days)
        )
        return response_figures(
            seller, waits, until=now, days=days, target_hours=self._target_hours
        )

    async def seller_figures(self, site: SiteID, seller_id: SellerID, days: int) -> ResponseFigures:
        """For the API: BAZAAR_UNKNOWN_SELLER when there is no such seller."""
        seller = await self._store.get_seller(site, seller_id)
        if seller is None:
            raise NotFound(f"Unknown seller '{seller_id}'", "BAZAAR_UNKNOWN_SELLER")
        return await self.for_seller(seller, days)

    async def site_figures(self, site: SiteID, days: int) -> list[ResponseFigures]:
        """Every seller of the site, from one query of waits, in the sellers' order."""
        now = self._clock()
        sellers = await self._store.list_sellers(site)
        waits = await self._store.site_waits_since(site, self._since(now, days))
        by_seller: dict[SellerID, list[Wait]] = defaultdict(list)
        for wait in waits:
            by_seller[wait.seller_id].append(wait)
        return [
            response_figures(
                seller,
                by_seller[seller.seller_id],
                until=now,
                days=days,
                target_hours=self._target_hours,
            )
            for seller in sellers
        ]

    async def usually_replies_within(self, seller: Seller) -> int | None:
        """The widget's "usually replies within … minutes", kept WIDGET_CACHE_SECONDS so
        the widget's calls cost no query each time."""
        key = (seller.site, seller.seller_id)
        now = self._monotonic()
        cached = self._widget_cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        since = self._since(self._clock(), WIDGET_DAYS)
        waits = await self._store.seller_waits_since(seller.site, seller.seller_id, since)
        value = usually_replies_within_minutes([w for w in waits if w.opened_at >= since])
        if len(self._widget_cache) > 10_000:
            self._widget_cache.clear()
        self._widget_cache[key] = (now + WIDGET_CACHE_SECONDS, value)
        return value

    async def stats_command(self, call: ManagementCall) -> None:
        """`!stats [days]`: the figures as a notice, then the chart as an image."""
        days = DEFAULT_DAYS if not call.args else parse_days(call.args)
        if days is None:
            raise BadCommand(STATS_USAGE)
        figures = await self.for_seller(call.seller, days)
        await self._rooms.send_notice(call.room_id, figures_notice(figures))
        chart = self._paint(figures)
        attachment = Attachment(
            attachment_id="",
            kind=AttachmentKind.IMAGE,
            name=CHART_NAME,
            content_type="image/png",
            size=len(chart.png),
            width=chart.width,
            height=chart.height,
        )
        await self._rooms.send_bot_file(call.room_id, attachment, chart.png)

    def command(self) -> Command[ManagementCall]:
        return Command("stats", STATS_HELP, self.stats_command)
