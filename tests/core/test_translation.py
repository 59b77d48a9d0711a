"""Translations: cached once made, and a failed provider left alone for the pause."""

from __future__ import annotations

from bridge.core.models import Original, TranslationNote
from bridge.core.translation import Translations, primary_language
from tests.core.fakes import DictCache, FakeClock, ScriptedProvider

PAUSE = 30.0


def translations() -> tuple[Translations, ScriptedProvider, FakeClock]:
    provider, clock = ScriptedProvider(), FakeClock()
    service = Translations(provider, DictCache(), None, pause_after_failure=PAUSE, clock=clock)
    return service, provider, clock


async def test_a_message_is_translated_with_its_original_kept() -> None:
    service, _, _ = translations()
    rendering = await service.render("Is it in stock?", "en-GB", "RU")
    assert rendering.text == "[ru] Is it in stock?"
    assert rendering.original == Original("Is it in stock?", "en")
    assert rendering.note == TranslationNote("en", "ru", "scripted")


async def test_nothing_to_translate_goes_as_written_without_a_note() -> None:
    service, _, _ = translations()
    for text, source, target in [
        ("Hello", "en", "en-US"),
        ("12345 !!!", "en", "ru"),
        ("Hello", None, "ru"),
        ("Hello", "en", None),
    ]:
        rendering = await service.render(text, source, target)
        assert (rendering.text, rendering.original, rendering.note) == (text, None, None)


async def test_without_a_provider_everything_goes_as_written() -> None:
    service = Translations(None, DictCache(), None)
    assert not service.enabled
    rendering = await service.render("Hello", "en", "ru")
    assert (rendering.text, rendering.note) == ("Hello", None)


async def test_a_failure_delivers_the_text_as_written_marked_failed() -> None:
    service, provider, _ = translations()
    provider.down = True
    rendering = await service.render("Hello", "en", "ru")
    assert rendering.text == "Hello"
    assert rendering.original is None
    assert rendering.note == TranslationNote("en", "ru", "scripted", failed=True)


async def test_a_failed_provider_is_left_alone_for_the_pause_then_asked_again() -> None:
    service, provider, clock = translations()
    provider.down = True
    await service.render("Hello", "en", "ru")
    provider.down = False  # back, but not asked until the pause is over

    clock.advance(PAUSE - 1)
    paused = await service.render("Hello", "en", "ru")
    assert (paused.text, paused.note is not None and paused.note.failed) == ("Hello", True)

    clock.advance(2)
    assert (await service.render("Hello", "en", "ru")).text == "[ru] Hello"


async def test_the_cache_still_answers_while_the_provider_is_down() -> None:
    service, provider, _ = translations()
    await service.render("Hello", "en", "ru")
    provider.down = True
    rendering = await service.render("Hello", "en", "ru")
    assert rendering.text == "[ru] Hello"
    assert rendering.note == TranslationNote("en", "ru", "scripted")


async def test_the_pause_length_is_the_callers() -> None:
    provider, clock = ScriptedProvider(), FakeClock()
    service = Translations(provider, DictCache(), None, pause_after_failure=5.0, clock=clock)
    provider.down = True
    await service.render("Hello", "en", "ru")
    provider.down = False
    clock.advance(5.5)
    assert (await service.render("Hello", "en", "ru")).text == "[ru] Hello"


def test_primary_language_is_the_first_subtag_in_lower_case() -> None:
    assert [primary_language(code) for code in ("en-US", "EN", "pt_BR", " ru ")] == [
        "en",
        "en",
        "pt",
        "ru",
    ]
