"""Templates in the store, on SQLite and PostgreSQL: ordered by position then name,
replaced whole by name, their file kept as the messages table keeps attachments."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.core.ids import SellerID
from bridge.core.models import Attachment, AttachmentKind, Seller, Template, Thumbnail
from bridge.store.database import create_engine, migrate, sessions
from bridge.store.repository import SqlRepository
from tests.store.test_repository import SITE

ACME = SellerID("acme")
CHART = Attachment(
    "",
    AttachmentKind.IMAGE,
    "sizes.png",
    "image/png",
    1234,
    sha256="ab" * 32,
    width=64,
    height=48,
    thumbnail=Thumbnail("image/png", 32, 24, 300, sha256="cd" * 32),
)


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def repository(engine: AsyncEngine) -> SqlRepository:
    store = SqlRepository(sessions(engine))
    await store.put_seller(Seller(SITE, ACME, "ACME", "en"))
    return store


async def test_templates_come_in_order_and_are_replaced_by_name(
    repository: SqlRepository,
) -> None:
    for name, position in (("b", 2.0), ("c", 0.5), ("a", 2.0)):
        assert await repository.put_template(Template(SITE, ACME, name, f"text {name}", position))
    found = await repository.list_templates(SITE, ACME)
    assert [(t.name, t.position) for t in found] == [("c", 0.5), ("a", 2.0), ("b", 2.0)]

    hidden = Template(SITE, ACME, "b", "new text", -1.0, visible=False)
    assert not await repository.put_template(hidden)
    assert await repository.get_template(SITE, ACME, "b") == hidden
    assert [t.name for t in await repository.list_templates(SITE, ACME)] == ["b", "c", "a"]
    assert await repository.list_templates(SITE, SellerID("other")) == []

    assert await repository.delete_template(SITE, ACME, "b")
    assert not await repository.delete_template(SITE, ACME, "b")
    assert await repository.get_template(SITE, ACME, "b") is None


async def test_a_templates_file_is_kept_and_taken_away(repository: SqlRepository) -> None:
    await repository.put_template(Template(SITE, ACME, "sizes", "Our sizes"))
    with_file = await repository.set_template_file(SITE, ACME, "sizes", CHART)
    assert with_file == Template(SITE, ACME, "sizes", "Our sizes", attachment=CHART)
    assert await repository.get_template(SITE, ACME, "sizes") == with_file
    # Replacing the words keeps what the caller hands back, file included.
    await repository.put_template(replace(with_file, text="New sizes"))
    kept = await repository.get_template(SITE, ACME, "sizes")
    assert kept is not None and kept.attachment == CHART
    without = await repository.set_template_file(SITE, ACME, "sizes", None)
    assert without is not None and without.attachment is None
    assert await repository.set_template_file(SITE, ACME, "missing", CHART) is None
