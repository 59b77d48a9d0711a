"""deep-translator's providers as the bridge runs them: LibreTranslate over a real socket,
failures of every kind turned into `TranslationUnavailable`, never a blocked event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from bridge.config import DETECTED_LANGUAGES, TRANSLATION_PROVIDERS, TranslationConfig
from bridge.core.ports import TranslationUnavailable
from bridge.demo.synapse import free_port
from bridge.translation.providers import (
    DeepTranslatorProvider,
    build_translator,
    make_provider,
    mymemory_locale,
)
from tests.support.libretranslate import FakeLibreTranslate


@pytest_asyncio.fixture
async def libre() -> AsyncIterator[FakeLibreTranslate]:
    server = FakeLibreTranslate()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def providers() -> Iterator[list[DeepTranslatorProvider]]:
    """Providers made by a test, closed after it."""
    made: list[DeepTranslatorProvider] = []
    yield made
    for provider in made:
        provider.close()


def libre_provider(
    providers: list[DeepTranslatorProvider],
    url: str,
    *,
    api_key: str | None = None,
    timeout_seconds: float = 5.0,
) -> DeepTranslatorProvider:
    provider = make_provider(
        TranslationConfig(
            provider="libre", url=url, api_key=api_key, timeout_seconds=timeout_seconds
        )
    )
    assert isinstance(provider, DeepTranslatorProvider)
    providers.append(provider)
    return provider


async def test_translates_through_libretranslate(
    libre: FakeLibreTranslate, providers: list[DeepTranslatorProvider]
) -> None:
    provider = libre_provider(providers, libre.url)

    assert await provider.translate("Здравствуйте!", "ru", "en") == "Hello!"
    # Languages deep-translator's own LibreTranslate list lacks still reach the server.
    assert await provider.translate("Thank you!", "en", "lt") == "Ačiū!"
    assert await provider.translate("Рахмет!", "kk", "uk") == "Дякую!"
    assert await provider.translate("Kettle, 1.7 l", "en", "pl") == "[pl] Kettle, 1.7 l"

    assert provider.name == "libre"
    assert libre.calls == [
        ("Здравствуйте!", "ru", "en"),
        ("Thank you!", "en", "lt"),
        ("Рахмет!", "kk", "uk"),
        ("Kettle, 1.7 l", "en", "pl"),
    ]
    # A server without keys gets none, not deep-translator's required stand-in.
    assert libre.api_keys == [None, None, None, None]


async def test_the_api_key_is_sent_and_never_shown(
    providers: list[DeepTranslatorProvider],
) -> None:
    libre = FakeLibreTranslate(api_key="s3cret-key")
    await libre.start()
    try:
        right = libre_provider(providers, libre.url, api_key="s3cret-key")
        assert await right.translate("Hello!", "en", "pl") == "Dzień dobry!"

        wrong = libre_provider(providers, libre.url, api_key="wrong-key-123")
        with pytest.raises(TranslationUnavailable) as refused:
            await wrong.translate("Hello!", "en", "pl")
        assert "AuthorizationException" in str(refused.value)
        assert "wrong-key-123" not in str(refused.value)
        assert libre.api_keys == ["s3cret-key", "wrong-key-123"]
    finally:
        await libre.close()


async def test_a_slow_provider_times_out_without_blocking_the_loop(
    libre: FakeLibreTranslate, providers: list[DeepTranslatorProvider]
) -> None:
    provider = libre_provider(providers, libre.url, timeout_seconds=1)
    libre.delay = 3

    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        with pytest.raises(TranslationUnavailable, match="did not answer within 1 s"):
            await provider.translate("Hello!", "en", "ru")
    finally:
        ticker.cancel()
    # The loop kept running while the provider's thread waited (blocked, it would not tick).
    assert ticks >= 2
    assert libre.calls == [("Hello!", "en", "ru")]


@pytest.mark.parametrize(
    ("breakage", "reported"),
    [
        ("500", "ServerException"),
        ("429", "ServerException"),
        ("not JSON", "JSONDecodeError"),
        ("unsupported language", "ServerException"),
    ],
)
async def test_a_failing_server_is_unavailable(
    libre: FakeLibreTranslate,
    providers: list[DeepTranslatorProvider],
    breakage: str,
    reported: str,
) -> None:
    provider = libre_provider(providers, libre.url)
    target = "ru"
    if breakage == "not JSON":
        libre.malformed = True
    elif breakage == "unsupported language":
        target = "zu"
    else:
        libre.fail_with_status = int(breakage)

    with pytest.raises(TranslationUnavailable) as failed:
        await provider.translate("Is the kettle still in stock?", "en", target)

    assert reported in str(failed.value)
    assert f"libre failed en→{target}" in str(failed.value)
    assert libre.calls == [("Is the kettle still in stock?", "en", target)]


async def test_an_unreachable_server_is_unavailable_and_the_text_stays_out_of_the_error(
    providers: list[DeepTranslatorProvider],
) -> None:
    provider = libre_provider(providers, f"http://127.0.0.1:{free_port()}/")

    with pytest.raises(TranslationUnavailable) as failed:
        await provider.translate("My address is 12 Secret Street", "en", "ru")

    assert "ConnectionError" in str(failed.value)
    assert "Secret" not in str(failed.value)


async def test_a_closed_provider_is_unavailable(
    libre: FakeLibreTranslate, providers: list[DeepTranslatorProvider]
) -> None:
    provider = libre_provider(providers, libre.url)
    provider.close()

    with pytest.raises(TranslationUnavailable, match="closed"):
        await provider.translate("Hello!", "en", "ru")
    assert libre.calls == []


def test_no_provider_when_translation_is_off() -> None:
    assert make_provider(TranslationConfig(provider="none")) is None


@pytest.mark.parametrize("name", [name for name in TRANSLATION_PROVIDERS if name != "none"])
def test_every_configured_provider_builds_without_the_network(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a provider went to the network while being built")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)

    provider = make_provider(
        TranslationConfig(provider=name, api_key="key:fx", url="http://127.0.0.1:9/")
    )

    assert isinstance(provider, DeepTranslatorProvider)
    assert provider.name == name
    provider.close()


@pytest.mark.parametrize("name", ["google", "mymemory"])
def test_every_detected_language_maps_to_the_providers_code(name: str) -> None:
    config = TranslationConfig(provider=name)
    for source in DETECTED_LANGUAGES:
        for target in DETECTED_LANGUAGES:
            if source != target:
                # deep-translator raises LanguageNotSupportedException for a code it refuses.
                build_translator(config, source, target)


def test_mymemory_takes_locales() -> None:
    assert [mymemory_locale(code) for code in ("en", "ru", "uk", "kk", "pl", "lt", "zh")] == [
        "en-GB",
        "ru-RU",
        "uk-UA",
        "kk-KZ",
        "pl-PL",
        "lt-LT",
        "zh-CN",
    ]
