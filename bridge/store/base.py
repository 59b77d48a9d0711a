"""The sessions every part of the store shares."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.core.ids import BuyerID, SiteID
from bridge.core.models import Buyer


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
