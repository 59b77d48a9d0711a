"""The waits the response-time figures are made of, read per seller or per site through
`ix_response_waits_seller` (site, seller_id, opened_at)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select

from bridge.core.figures import Wait
from bridge.core.ids import ConversationID, SellerID, SiteID, UserID
from bridge.store.base import Sessions
from bridge.store.schema import WaitRow


def _to_wait(row: WaitRow) -> Wait:
    return Wait(
        conversation_id=ConversationID(row.conversation_id),
        site=SiteID(row.site),
        seller_id=SellerID(row.seller_id),
        opened_at=row.opened_at,
        first=row.first,
        closed_at=row.closed_at,
        outcome=row.outcome,
        closed_by=UserID(row.closed_by) if row.closed_by is not None else None,
        wall_seconds=row.wall_seconds,
        working_seconds=row.working_seconds,
    )


class WaitStatsStore(Sessions):
    # Response-time figures

    async def seller_waits_since(
        self, site: SiteID, seller_id: SellerID, since: datetime
    ) -> list[Wait]:
        query = (
            select(WaitRow)
            .where(WaitRow.site == site, WaitRow.seller_id == seller_id)
            .where(or_(WaitRow.opened_at >= since, WaitRow.closed_at.is_(None)))
            .order_by(WaitRow.opened_at)
        )
        async with self._reads() as session:
            return [_to_wait(row) for row in await session.scalars(query)]

    async def site_waits_since(self, site: SiteID, since: datetime) -> list[Wait]:
        query = (
            select(WaitRow)
            .where(WaitRow.site == site)
            .where(or_(WaitRow.opened_at >= since, WaitRow.closed_at.is_(None)))
            .order_by(WaitRow.seller_id, WaitRow.opened_at)
        )
        async with self._reads() as session:
            return [_to_wait(row) for row in await session.scalars(query)]
