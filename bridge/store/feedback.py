"""Feedback forms left while a seller's chat is off, and the owner's switch for chat."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, select, update

from bridge.core.events import Event
from bridge.core.ids import BuyerID, SellerID, SiteID
from bridge.core.models import Feedback
from bridge.store.base import Sessions
from bridge.store.records import store_events, utc_now
from bridge.store.schema import FeedbackRow, SellerRow


class FeedbackStore(Sessions):
    async def add_feedback(self, feedback: Feedback, events: Sequence[Event]) -> Feedback:
        async with self._writes.begin() as session:
            session.add(
                FeedbackRow(
                    feedback_id=feedback.feedback_id,
                    site=feedback.site,
                    seller_id=feedback.seller_id,
                    buyer_id=feedback.buyer_id,
                    text=feedback.text,
                    contact=feedback.contact,
                    created_at=feedback.created_at,
                )
            )
            await store_events(session, events)
        return feedback

    async def list_feedback(self, site: SiteID, seller_id: SellerID) -> list[Feedback]:
        async with self._reads() as session:
            rows = await session.scalars(
                select(FeedbackRow)
                .where(FeedbackRow.site == site, FeedbackRow.seller_id == seller_id)
                .order_by(FeedbackRow.created_at)
            )
            return [
                Feedback(
                    feedback_id=row.feedback_id,
                    site=SiteID(row.site),
                    seller_id=SellerID(row.seller_id),
                    text=row.text,
                    contact=row.contact,
                    created_at=row.created_at,
                    buyer_id=BuyerID(row.buyer_id) if row.buyer_id is not None else None,
                )
                for row in rows
            ]

    async def set_chat_enabled(self, site: SiteID, seller_id: SellerID, enabled: bool) -> bool:
        self._forget_seller(site, seller_id)
        async with self._writes.begin() as session:
            result = await session.execute(
                update(SellerRow)
                .where(SellerRow.site == site, SellerRow.seller_id == seller_id)
                .values(chat_enabled=enabled, updated_at=utc_now())
            )
        self._seller_changed(site, seller_id)
        return cast(CursorResult[Any], result).rowcount > 0
