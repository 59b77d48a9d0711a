"""`Translations` with everything real but the service: deep-translator's LibreTranslate
client against a LibreTranslate-speaking server, and the SQL cache on SQLite and
PostgreSQL. What the reader gets, and how often the provider is asked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.config import TranslationConfig
from bridge.core.models import Original, TranslationNote
from bridge.core.translation import Rendering, Translations
from bridge.store.database import create_engine, migrate, sessions
from bridge.store.repository import SqlRepository
from bridge.translation.detection import LinguaDetector
from bridge.translation.providers import DeepTranslatorProvider
from tests.support.libretranslate import FakeLibreTranslate

QUESTION_RU = "Здравствуйте, этот товар есть в наличии?"
QUESTION_EN = "Hello, is this item in stock?"


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def repository(engine: AsyncEngine) -> SqlRepository:
    return SqlRepository(sessions(engine))


@pytest_asyncio.fixture
async def libre() -> AsyncIterator[FakeLibreTranslate]:
    server = FakeLibreTranslate()
    await server.start()
    yield server
    await server.close()


@pytest_asyncio.fixture
async def provider(libre: FakeLibreTranslate) -> AsyncIterator[DeepTranslatorProvider]:
    provider = DeepTranslatorProvider(
        TranslationConfig(provider="libre", url=libre.url, timeout_seconds=1)
    )
    yield provider
    provider.close()


def translated(text: str, source: str, target: str, original: str) -> Rendering:
    return Rendering(text, Original(original, source), TranslationNote(source, target, "libre"))


async def test_the_same_text_costs_one_call(
    repository: SqlRepository, provider: DeepTranslatorProvider, libre: FakeLibreTranslate
) -> None:
    translations = Translations(provider, repository, None)

    first = await translations.render(QUESTION_RU, "ru", "en")
    again = await translations.render(QUESTION_RU, "ru-RU", "EN")

    assert first == again == translated(QUESTION_EN, "ru", "en", QUESTION_RU)
    assert libre.calls == [(QUESTION_RU, "ru", "en")]
    assert (translations.provider_calls, translations.cache_hits) == (1, 1)

    # The cache is the database's: a restarted bridge still has it.
    restarted = Translations(provider, repository, None)
    assert await restarted.render(QUESTION_RU, "ru", "en") == first
    assert (restarted.provider_calls, restarted.cache_hits) == (0, 1)
    assert len(libre.calls) == 1


async def test_each_direction_and_language_is_its_own_translation(
    repository: SqlRepository, provider: DeepTranslatorProvider, libre: FakeLibreTranslate
) -> None:
    translations = Translations(provider, repository, None)

    to_polish = await translations.render(QUESTION_EN, "en", "pl")
    to_kazakh = await translations.render(QUESTION_EN, "en", "kk")
    back = await translations.render(to_polish.text, "pl", "en")

    assert to_polish == translated(libre.expected(QUESTION_EN, "en", "pl"), "en", "pl", QUESTION_EN)
    assert to_kazakh.text == "Сәлеметсіз бе, бұл тауар бар ма?"
    assert back.text == QUESTION_EN
    assert len(libre.calls) == 3


async def test_a_failure_delivers_the_text_as_written_and_is_not_remembered(
    repository: SqlRepository, provider: DeepTranslatorProvider, libre: FakeLibreTranslate
) -> None:
    now = [1000.0]
    translations = Translations(
        provider, repository, None, pause_after_failure=30, clock=lambda: now[0]
    )
    failed = Rendering(QUESTION_RU, None, TranslationNote("ru", "en", "libre", failed=True))

    libre.fail_with_status = 500
    assert await translations.render(QUESTION_RU, "ru", "en") == failed
    assert len(libre.calls) == 1

    # A provider that just failed is left alone: the next message doesn't wait for it.
    libre.fail_with_status = None
    now[0] += 29
    assert await translations.render(QUESTION_RU, "ru", "en") == failed
    assert len(libre.calls) == 1

    # Too slow counts as failed (the provider's timeout is 1 s, the answer takes 3).
    now[0] += 2
    libre.delay = 3
    assert await translations.render(QUESTION_RU, "ru", "en") == failed
    assert len(libre.calls) == 2

    libre.delay = 0
    now[0] += 31
    assert await translations.render(QUESTION_RU, "ru", "en") == translated(
        QUESTION_EN, "ru", "en", QUESTION_RU
    )
    assert len(libre.calls) == 3
    assert (translations.provider_calls, translations.cache_hits) == (3, 0)


async def test_nothing_to_translate_asks_no_one(
    repository: SqlRepository, provider: DeepTranslatorProvider, libre: FakeLibreTranslate
) -> None:
    translations = Translations(provider, repository, None)
    assert translations.enabled

    for text, source, target in (
        ("Is it new?", "en", "en"),
        ("Is it new?", "en-US", "EN_gb"),
        ("Is it new?", None, "ru"),
        ("Is it new?", "en", None),
        ("4455-1200 / 24.90 €", "en", "ru"),
        ("👍", "ru", "en"),
    ):
        assert await translations.render(text, source, target) == Rendering(text, None, None)
    assert libre.calls == []
    assert translations.provider_calls == 0


async def test_without_a_provider_nothing_is_translated(
    repository: SqlRepository, libre: FakeLibreTranslate
) -> None:
    translations = Translations(None, repository, None)

    assert not translations.enabled
    assert await translations.render(QUESTION_RU, "ru", "en") == Rendering(QUESTION_RU, None, None)
    assert translations.detect(QUESTION_RU) is None  # nor is there a detector
    assert libre.calls == []


async def test_detection_names_the_source_to_translate_from(
    repository: SqlRepository, provider: DeepTranslatorProvider, libre: FakeLibreTranslate
) -> None:
    detector = LinguaDetector(["en", "ru", "pl", "lt", "kk", "uk"])
    await detector.warm_up()
    translations = Translations(provider, repository, detector)

    source = translations.detect("Kada išsiųsite mano užsakymą?")
    rendering = await translations.render("Kada išsiųsite mano užsakymą?", source, "en")

    assert source == "lt"
    assert rendering.text == "When will you ship my order?"
    assert translations.detect("12345") is None


async def test_keeping_a_translation_twice_keeps_the_first(repository: SqlRepository) -> None:
    await asyncio.gather(
        *(
            repository.keep_translation("libre", "en", "ru", "Hello!", f"Привет {n}")
            for n in range(5)
        )
    )
    await repository.keep_translation("libre", "en", "ru", "Hello!", "Здравствуйте!")

    kept = await repository.cached_translation("libre", "en", "ru", "Hello!")
    assert kept is not None and kept.startswith("Привет ")
    assert await repository.cached_translation("google", "en", "ru", "Hello!") is None
    assert await repository.cached_translation("libre", "en", "uk", "Hello!") is None
    assert await repository.cached_translation("libre", "en", "ru", "Hello") is None
