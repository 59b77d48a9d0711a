"""Reply tokens and unsubscribes in the store: one token per buyer and conversation, even
when asked for at once; an unsubscribe is kept once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.core.ids import BuyerID
from bridge.store.database import create_engine, migrate, sessions
from bridge.store.repository import SqlRepository
from tests.store.test_repository import SITE, seeded


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def repository(engine: AsyncEngine) -> SqlRepository:
    return SqlRepository(sessions(engine))


async def test_one_token_per_buyer_and_conversation_even_at_once(
    repository: SqlRepository,
) -> None:
    conversation = await seeded(repository)
    tokens = await asyncio.gather(
        *(
            repository.reply_token(SITE, conversation.buyer_id, conversation.conversation_id)
            for _ in range(5)
        )
    )
    assert len(set(tokens)) == 1
    [token] = set(tokens)
    assert len(token) >= 32 and token.isalnum() and token == token.lower()
    named = (SITE, conversation.buyer_id, conversation.conversation_id)
    assert await repository.by_reply_token(token) == named
    # Mail systems may fold the local part to upper case.
    assert await repository.by_reply_token(token.upper()) == named
    assert await repository.by_reply_token(token[:-1] + "_") is None


async def test_an_unsubscribe_is_kept_and_a_repeat_is_harmless(
    repository: SqlRepository,
) -> None:
    conversation = await seeded(repository)
    buyer = conversation.buyer_id
    assert not await repository.is_unsubscribed(SITE, buyer)
    await asyncio.gather(repository.unsubscribe(SITE, buyer), repository.unsubscribe(SITE, buyer))
    await repository.unsubscribe(SITE, buyer)
    assert await repository.is_unsubscribed(SITE, buyer)
    assert not await repository.is_unsubscribed(SITE, BuyerID("someone-else"))
