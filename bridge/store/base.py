"""The sessions every part of the store shares."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.core.ids import BuyerID, SellerID, SiteID
from bridge.core.models import Buyer, Seller


class Sessions:
    """Writes go through `writes`; plain reads through `reads` (a separate pool on SQLite)."""

    def __init__(
        self,
        writes: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self._writes = writes
        self._reads = reads or writes
        # Buyers are read for every message and change rarely; this process is their only
        # writer (the bridge runs as one process), so a copy in memory stays true.
        self._buyers: dict[tuple[SiteID, BuyerID], Buyer] = {}
        # Sellers likewise (read for every message, with their members); every write of a
        # seller row goes through `_forget_seller` or replaces the copy.
        self._sellers: dict[tuple[SiteID, SellerID], Seller] = {}

    def _forget_seller(self, site: SiteID, seller_id: SellerID) -> None:
        """Drop the copy of a seller whose row is about to change."""
        self._sellers.pop((site, seller_id), None)
