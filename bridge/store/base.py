"""The sessions every part of the store shares."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

from sqlalchemy import Executable, Row, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bridge.core.ids import BuyerID, SellerID, SiteID
from bridge.core.models import Buyer, Seller

# The first key of the advisory locks `Sessions.exclusive` takes (the duties' are apart).
EXCLUSIVE_SPACE = 0x0BA2AB


class Sessions:
    """Writes go through `writes`; plain reads through `reads` (a separate pool on SQLite)."""

    def __init__(
        self,
        writes: async_sessionmaker[AsyncSession],
        reads: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self._writes = writes
        self._reads = reads or writes
        # The engines themselves, for the reads and writes done for every message: a Core
        # connection costs a fraction of a session per statement.
        self._write_engine: AsyncEngine = writes.kw["bind"]
        self._read_engine: AsyncEngine = self._reads.kw["bind"]
        # Several replicas may share a PostgreSQL database; SQLite has one process.
        self._shared = self._write_engine.dialect.name == "postgresql"
        # Buyers are read for every message and change rarely: a copy in memory, which
        # every write here replaces and other replicas are told to drop (`party_changed`).
        self._buyers: dict[tuple[SiteID, BuyerID], Buyer] = {}
        # Sellers likewise (read for every message, with their members); every write of a
        # seller row goes through `_forget_seller` and `_seller_changed`, or replaces it.
        self._sellers: dict[tuple[SiteID, SellerID], Seller] = {}
        # Called with a party's key (`party_key`) once its row has changed.
        self.party_changed: Callable[[str], None] = lambda _key: None

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Run the block on one replica at a time for `name`: for making what must exist
        once (a seller's Space), which the block looks for again inside. On PostgreSQL an
        advisory lock, held by one of the pool's connections for the block's length (a
        replica that dies lets it go); one process needs nothing more than its own locks."""
        if not self._shared:
            yield
            return
        key = zlib.crc32(name.encode()) - (1 << 31)
        async with self._writes() as session:
            await session.execute(select(func.pg_advisory_lock(EXCLUSIVE_SPACE, key)))
            try:
                yield
            finally:
                await session.execute(select(func.pg_advisory_unlock(EXCLUSIVE_SPACE, key)))
                await session.commit()

    async def _read_first(
        self, statement: Executable, parameters: dict[str, Any]
    ) -> Row[Any] | None:
        """The first row of a read, on a Core connection of the read pool."""
        async with self._read_engine.connect() as connection:
            return (await connection.execute(statement, parameters)).first()

    def _forget_seller(self, site: SiteID, seller_id: SellerID) -> None:
        """Drop the copy of a seller whose row is about to change."""
        self._sellers.pop((site, seller_id), None)

    def _seller_changed(self, site: SiteID, seller_id: SellerID) -> None:
        self.party_changed(party_key("seller", site, seller_id))

    def _buyer_changed(self, site: SiteID, buyer_id: BuyerID) -> None:
        self.party_changed(party_key("buyer", site, buyer_id))

    def forget_party(self, key: str) -> None:
        """Drop the copy of a party another replica changed; "" drops them all."""
        kind, _, rest = key.partition(" ")
        site, _, party = rest.partition(" ")
        if kind == "seller":
            self._sellers.pop((SiteID(site), SellerID(party)), None)
        elif kind == "buyer":
            self._buyers.pop((SiteID(site), BuyerID(party)), None)
        else:
            self._sellers.clear()
            self._buyers.clear()


def party_key(kind: str, site: str, party: str) -> str:
    """How a changed seller or buyer is named to other replicas (ids hold no spaces)."""
    return f"{kind} {site} {party}"


def insert_on(dialect: str, table: Any) -> Any:
    """An INSERT in the dialect's own form, the one that takes ON CONFLICT."""
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


async def upsert(
    session: AsyncSession, row_type: type[Any], values: dict[str, Any], keys: Collection[str]
) -> None:
    """Insert the row, or update the one with the same `keys` to these values, in one
    statement: a read then a write (the ORM's merge) lets two writers at once (two
    replicas, two requests) both insert, and one of them fails on the key."""
    statement = insert_on(session.get_bind().dialect.name, row_type).values(**values)
    changed = {name: statement.excluded[name] for name in values if name not in keys}
    await session.execute(
        statement.on_conflict_do_update(index_elements=list(keys), set_=changed)
        if changed
        else statement.on_conflict_do_nothing(index_elements=list(keys))
    )
