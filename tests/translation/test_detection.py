"""lingua among the default languages: short chat messages are told apart, and a text
with nothing to go on gets no language rather than a guess."""

from __future__ import annotations

import pytest
import pytest_asyncio

from bridge.config import DETECTED_LANGUAGES, ConfigError
from bridge.translation.detection import LinguaDetector


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def detector() -> LinguaDetector:
    detector = LinguaDetector(DETECTED_LANGUAGES)
    await detector.warm_up()
    return detector


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Здравствуйте, товар ещё в наличии?", "ru"),
        ("Когда вы отправите мой заказ?", "ru"),
        ("Можно оплатить картой?", "ru"),
        ("Dzień dobry, czy produkt jest dostępny?", "pl"),
        ("Gdzie jest moja paczka?", "pl"),
        ("Laba diena, ar prekė dar yra?", "lt"),
        ("Kur mano siuntinys?", "lt"),
        ("Is the kettle still in stock?", "en"),
        ("When will you ship my order?", "en"),
        ("Can I pay by card?", "en"),
        ("Сәлеметсіз бе, тауар бар ма?", "kk"),
        ("Менің сәлемдемем қайда?", "kk"),
        ("Добрий день, товар ще є в наявності?", "uk"),
        ("Чи можна оплатити карткою?", "uk"),
        ("Labdien, vai prece vēl ir pieejama?", "lv"),
        ("Guten Tag, ist der Artikel noch verfügbar?", "de"),
    ],
)
def test_short_messages_are_recognised(detector: LinguaDetector, text: str, language: str) -> None:
    assert detector.detect(text) == language


@pytest.mark.parametrize(
    "text",
    [
        "12345 678",
        "+370 600 12345",
        "👍👍",
        "",
        "Ok",  # too short to tell
        "Да",  # lingua alone would say Kazakh
        "hello",  # as Italian as it is English to lingua
    ],
)
def test_no_language_when_there_is_nothing_to_go_on(detector: LinguaDetector, text: str) -> None:
    assert detector.detect(text) is None


def test_only_the_configured_languages_are_candidates() -> None:
    # Without Polish among the candidates, a Polish question can't come out as Polish.
    detector = LinguaDetector(["ru", "en"])
    assert detector.languages == ("ru", "en")
    assert detector.detect("Gdzie jest moja paczka?") != "pl"


def test_builds_on_first_use_without_warming_up() -> None:
    detector = LinguaDetector(["EN", "ru", "ru"])
    assert detector.languages == ("en", "ru")
    assert detector.detect("Где моя посылка?") == "ru"


@pytest.mark.parametrize(
    ("languages", "problem"),
    [
        (["en", "xx"], "'xx' is not an ISO 639-1 code"),
        (["en", "en"], "at least two"),
    ],
)
def test_a_language_lingua_cannot_detect_is_a_config_error(
    languages: list[str], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem) as error:
        LinguaDetector(languages)
    assert error.value.key == "translation.detect_languages"
