"""A LibreTranslate server on loopback, for tests that translate through deep-translator.

LibreTranslate is the one provider that can stand in for all of them here: the real one
needs gigabytes of models, so this fake speaks its HTTP API (`POST /translate`,
`GET /languages`, its error bodies) over a real socket, and translates deterministically.

    libre = FakeLibreTranslate()
    await libre.start()
    config = TranslationConfig(provider="libre", url=libre.url, timeout_seconds=1)
    ...
    assert libre.calls == [("Здравствуйте!", "ru", "en")]
    assert rendered == libre.expected("Здравствуйте!", "ru", "en")  # "Hello!"
    await libre.close()

It must run on the tests' event loop; deep-translator, in the bridge's worker thread,
reaches it over the socket. Knobs, each applying to the next requests:

- `delay`: seconds to wait before answering (ends early when the server closes);
- `fail_with_status`: answer with this status and LibreTranslate's error body for it;
- `malformed`: answer 200 with a body that isn't JSON (as a proxy's error page would);
- `api_key` (constructor): require this key, as a server run with API keys does.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from tests.support.loopback import LoopbackServer

# Phrases and their translations; any other text becomes "[{target}] {text}".
PHRASEBOOK: tuple[dict[str, str], ...] = (
    {
        "en": "Hello!",
        "ru": "Здравствуйте!",
        "uk": "Добрий день!",
        "pl": "Dzień dobry!",
        "lt": "Laba diena!",
        "kk": "Сәлеметсіз бе!",
    },
    {
        "en": "Hello, is this item in stock?",
        "ru": "Здравствуйте, этот товар есть в наличии?",
        "uk": "Добрий день, цей товар є в наявності?",
        "pl": "Dzień dobry, czy ten produkt jest dostępny?",
        "lt": "Laba diena, ar ši prekė yra sandėlyje?",
        "kk": "Сәлеметсіз бе, бұл тауар бар ма?",
    },
    {
        "en": "When will you ship my order?",
        "ru": "Когда вы отправите мой заказ?",
        "uk": "Коли ви надішлете моє замовлення?",
        "pl": "Kiedy wyślecie moje zamówienie?",
        "lt": "Kada išsiųsite mano užsakymą?",
        "kk": "Тапсырысымды қашан жібересіз?",
    },
    {
        "en": "Yes, two left.",
        "ru": "Да, осталось два.",
        "uk": "Так, залишилось два.",
        "pl": "Tak, zostały dwa.",
        "lt": "Taip, liko du.",
        "kk": "Иә, екеуі қалды.",
    },
    {
        "en": "It ships tomorrow.",
        "ru": "Отправим завтра.",
        "uk": "Надішлемо завтра.",
        "pl": "Wyślemy jutro.",
        "lt": "Išsiųsime rytoj.",
        "kk": "Ертең жібереміз.",
    },
    {
        "en": "Thank you!",
        "ru": "Спасибо!",
        "uk": "Дякую!",
        "pl": "Dziękuję!",
        "lt": "Ačiū!",
        "kk": "Рахмет!",
    },
)

LANGUAGES = {
    "en": "English",
    "ru": "Russian",
    "uk": "Ukrainian",
    "kk": "Kazakh",
    "pl": "Polish",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "et": "Estonian",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "tr": "Turkish",
}

# What LibreTranslate says with each status it uses.
ERRORS = {
    400: "Invalid request",
    403: "Invalid API key",
    429: "Too many request limits violations",
    500: "Cannot translate text: the model failed",
}


class FakeLibreTranslate(LoopbackServer):
    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.delay = 0.0
        self.fail_with_status: int | None = None
        self.malformed = False
        # Every /translate request in order of arrival, failed ones included.
        self.calls: list[tuple[str, str, str]] = []
        # The api_key each of those requests carried (None: it carried none).
        self.api_keys: list[str | None] = []
        self._closing = asyncio.Event()

    @property
    def url(self) -> str:
        """The base URL, as `translation.url` takes it."""
        return f"{self.base}/"

    @staticmethod
    def expected(text: str, source: str, target: str) -> str:
        """What this server answers for `text` from `source` into `target`."""
        for phrase in PHRASEBOOK:
            if phrase.get(source) == text and target in phrase:
                return phrase[target]
        return f"[{target}] {text}"

    async def close(self) -> None:
        self._closing.set()  # lets delayed answers go, so the server stops at once
        await self.stop()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/translate", self._translate)
        app.router.add_get("/languages", self._languages)

    async def _languages(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                {"code": code, "name": name, "targets": sorted(LANGUAGES)}
                for code, name in LANGUAGES.items()
            ]
        )

    async def _translate(self, request: web.Request) -> web.Response:
        # LibreTranslate reads JSON, or else the form and the query string together
        # (deep-translator puts everything in the query string of a POST).
        fields: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "Invalid request: the body is not JSON")
            if not isinstance(body, dict):
                return _error(400, "Invalid request: the body is not an object")
            fields.update(body)
        else:
            fields.update(await request.post())
        for name in ("q", "source", "target"):
            if not isinstance(fields.get(name), str) or not fields[name]:
                return _error(400, f"Invalid request: missing {name} parameter")
        text, source, target = fields["q"], fields["source"], fields["target"]
        self.calls.append((text, source, target))
        api_key = fields.get("api_key")
        self.api_keys.append(api_key if isinstance(api_key, str) else None)

        if self.delay:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.delay):
                    await self._closing.wait()
        if self.fail_with_status is not None:
            return _error(self.fail_with_status, ERRORS.get(self.fail_with_status, "Error"))
        if self.malformed:
            return web.Response(text="<html><body>502 Bad Gateway</body></html>")
        if self.api_key is not None and api_key != self.api_key:
            return _error(403, ERRORS[403])
        for language in (source, target):
            if language != "auto" and language not in LANGUAGES:
                return _error(400, f"{language} is not supported")
        if fields.get("format", "text") not in ("text", "html"):
            return _error(400, "Invalid request: format must be text or html")

        if source == "auto":
            detected = next(
                (lang for phrase in PHRASEBOOK for lang, said in phrase.items() if said == text),
                "en",
            )
            return web.json_response(
                {
                    "translatedText": self.expected(text, detected, target),
                    "detectedLanguage": {"confidence": 90.0, "language": detected},
                }
            )
        return web.json_response({"translatedText": self.expected(text, source, target)})


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
