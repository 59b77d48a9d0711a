"""The waits the response-time figures read, on SQLite and PostgreSQL: per seller and per
site, those opened in the period and those still open, through the seller index."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.core.figures import Wait
from bridge.core.ids import BuyerID, SellerID, SiteID, UserID
from bridge.core.models import Seller
from bridge.store.database import create_engine, migrate, sessions
from bridge.store.repository import SqlRepository
from tests.store.test_repository import NOW, SITE
from tests.support.waits import add_waits, stored_conversation

ACME = SellerID("acme")
OTHER = SellerID("other")
ALICE = UserID("@alice:hs")


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def repository(engine: AsyncEngine) -> SqlRepository:
    store = SqlRepository(sessions(engine))
    for seller_id in (ACME, OTHER):
        await store.put_seller(Seller(SITE, seller_id, seller_id.upper(), "en"))
    await store.put_seller(Seller(SiteID("elsewhere"), ACME, "ACME elsewhere", "en"))
    return store


def replied(wait: Wait, hours: float, working: float) -> Wait:
    return replace(
        wait,
        closed_at=wait.opened_at + timedelta(hours=hours),
        outcome="replied",
        closed_by=ALICE,
        wall_seconds=hours * 3600,
        working_seconds=working * 3600,
    )


async def test_waits_of_a_seller_and_of_a_site(repository: SqlRepository) -> None:
    one = await stored_conversation(repository, SITE, ACME, BuyerID("anna"), "p1", NOW)
    two = await stored_conversation(repository, SITE, OTHER, BuyerID("anna"), "p2", NOW)
    far = await stored_conversation(repository, SiteID("elsewhere"), ACME, BuyerID("b"), "p", NOW)
    since = NOW - timedelta(days=30)
    recent = replied(Wait(one, SITE, ACME, NOW - timedelta(days=2), first=True), 1.5, 0.5)
    old_closed = replied(Wait(one, SITE, ACME, since - timedelta(hours=1)), 2, 2)
    old_open = Wait(one, SITE, ACME, since - timedelta(days=3))
    noreply = replace(
        Wait(one, SITE, ACME, NOW - timedelta(hours=5)),
        closed_at=NOW - timedelta(hours=4),
        outcome="noreply",
        closed_by=ALICE,
        wall_seconds=3600.0,
        working_seconds=0.0,
    )
    theirs = Wait(two, SITE, OTHER, NOW - timedelta(days=1), first=True)
    elsewhere = Wait(far, SiteID("elsewhere"), ACME, NOW - timedelta(days=1))
    await add_waits(repository, [recent, old_closed, old_open, noreply, theirs, elsewhere])

    # Opened in the period, oldest first, and the one still open from before it.
    assert await repository.seller_waits_since(SITE, ACME, since) == [old_open, recent, noreply]
    assert await repository.seller_waits_since(SITE, OTHER, since) == [theirs]
    assert await repository.seller_waits_since(SITE, SellerID("nobody"), since) == []
    assert await repository.site_waits_since(SITE, since) == [old_open, recent, noreply, theirs]
    assert await repository.site_waits_since(SiteID("elsewhere"), since) == [elsewhere]
    # Nothing recent: only what is still open.
    assert await repository.seller_waits_since(SITE, ACME, NOW) == [old_open]


async def test_the_seller_query_uses_the_seller_index_on_sqlite(sqlite_url: str) -> None:
    # SQLite's plan is stable on a small table; PostgreSQL's planner would rightly scan it.
    engine = create_engine(sqlite_url)
    await migrate(engine)
    async with engine.connect() as connection:
        plan = await connection.execute(
            text(
                "EXPLAIN QUERY PLAN SELECT * FROM response_waits WHERE site = 'shop' "
                "AND seller_id = 'acme' AND (opened_at >= '2026-01-01' OR closed_at IS NULL) "
                "ORDER BY opened_at"
            )
        )
        details = " ".join(str(row[-1]) for row in plan)
    await engine.dispose()
    assert "ix_response_waits_seller" in details
