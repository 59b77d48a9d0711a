"""Translation providers over deep-translator (Google, DeepL, Microsoft, MyMemory,
LibreTranslate), each call in a worker thread under the configured timeout.

deep-translator is synchronous and calls `requests` without a timeout, so a call runs in
this module's own small thread pool: a provider that hangs then ties up at most those
threads, never the event loop nor the loop's default executor (which aiohttp needs to
resolve host names). A fresh translator is made for every call, inside the thread, because
translator objects keep per-call state and some constructors go to the network
(MicrosoftTranslator fetches its language list).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from deep_translator import (
    DeeplTranslator,
    GoogleTranslator,
    LibreTranslator,
    MicrosoftTranslator,
    MyMemoryTranslator,
)
from deep_translator.constants import MY_MEMORY_LANGUAGES_TO_CODES
from deep_translator.exceptions import BaseError
from requests import RequestException

from bridge.config import ConfigError, TranslationConfig
from bridge.core.ports import TranslationProvider, TranslationUnavailable

# Builds deep-translator's translator for one call from (config, source, target); its
# `.translate(text)` does the work. deep-translator is untyped, hence Any.
Translator = Callable[[TranslationConfig, str, str], Any]

# deep-translator's codes differ from ISO 639-1 here and there.
_GOOGLE_CODES = {"he": "iw", "jv": "jw", "zh": "zh-CN", "nb": "no"}
_MICROSOFT_CODES = {"zh": "zh-hans", "no": "nb"}  # deep-translator lower-cases Microsoft's
# MyMemory takes locales ("en-GB"); where the language's own country isn't the obvious one.
_MYMEMORY_LOCALES = {"en": "en-GB", "zh": "zh-CN", "ar": "ar-SA", "sr": "sr-Latn-RS"}


def _google(config: TranslationConfig, source: str, target: str) -> Any:
    return GoogleTranslator(
        source=_GOOGLE_CODES.get(source, source), target=_GOOGLE_CODES.get(target, target)
    )


def _deepl(config: TranslationConfig, source: str, target: str) -> Any:
    key = config.api_key or ""
    # DeepL's free-plan keys end in ":fx" and live on a separate host.
    return DeeplTranslator(
        source=source, target=target, api_key=key, use_free_api=key.endswith(":fx")
    )


def _microsoft(config: TranslationConfig, source: str, target: str) -> Any:
    return MicrosoftTranslator(
        source=_MICROSOFT_CODES.get(source, source),
        target=_MICROSOFT_CODES.get(target, target),
        api_key=config.api_key,
        region=config.region,
    )


def mymemory_locale(code: str) -> str:
    """The MyMemory locale deep-translator accepts for an ISO 639-1 code: "ru" → "ru-RU",
    "uk" → "uk-UA", "en" → "en-GB"; the code itself when MyMemory has none (refused later)."""
    if code in _MYMEMORY_LOCALES:
        return _MYMEMORY_LOCALES[code]
    locales = sorted(
        locale for locale in MY_MEMORY_LANGUAGES_TO_CODES.values() if locale.split("-")[0] == code
    )
    own_country = f"{code}-{code.upper()}"
    if own_country in locales:
        return own_country
    return locales[0] if locales else code


def _mymemory(config: TranslationConfig, source: str, target: str) -> Any:
    return MyMemoryTranslator(source=mymemory_locale(source), target=mymemory_locale(target))


def _libre(config: TranslationConfig, source: str, target: str) -> Any:
    # deep-translator refuses to build a LibreTranslator without a key, although
    # self-hosted servers need none, and checks the languages against a list of 17 that
    # lacks Ukrainian, Lithuanian, Kazakh…: build it with stand-ins, then set the real
    # values, so that no stand-in key is sent and the server decides what it supports.
    base_url = (config.url or "").rstrip("/") + "/"  # deep-translator appends "translate"
    translator = LibreTranslator(source="en", target="es", api_key="unused", custom_url=base_url)
    translator.api_key = config.api_key
    translator.source = source
    translator.target = target
    return translator


_TRANSLATORS: dict[str, Translator] = {
    "google": _google,
    "deepl": _deepl,
    "microsoft": _microsoft,
    "mymemory": _mymemory,
    "libre": _libre,
}


def build_translator(config: TranslationConfig, source: str, target: str) -> Any:
    """deep-translator's object for one call from `source` to `target` (ISO 639-1), with
    the codes mapped to the provider's. May go to the network (Microsoft's does), so it
    belongs in a worker thread; raises deep-translator's errors for a language it refuses."""
    return _TRANSLATORS[config.provider](config, source, target)


class DeepTranslatorProvider:
    """A `TranslationProvider` over one deep-translator service, named as configured."""

    def __init__(self, config: TranslationConfig, *, threads: int = 4) -> None:
        if config.provider not in _TRANSLATORS:
            raise ConfigError(
                "translation.provider", f"must be one of {', '.join(sorted(_TRANSLATORS))}"
            )
        self._config = config
        self._threads = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix=f"translate-{config.provider}"
        )
        self._closed = False

    @property
    def name(self) -> str:
        return self._config.provider

    async def translate(self, text: str, source: str, target: str) -> str:
        if self._closed:
            raise TranslationUnavailable(f"{self.name} is closed")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._config.timeout_seconds):
                return await loop.run_in_executor(
                    self._threads, self._translate_in_thread, text, source, target
                )
        except TimeoutError:
            # The thread may still be waiting on the provider; it finishes in the
            # background and its answer is dropped.
            raise TranslationUnavailable(
                f"{self.name} did not answer within {self._config.timeout_seconds:g} s"
            ) from None

    def close(self) -> None:
        """Take no more calls; threads still waiting on the provider end on their own."""
        self._closed = True
        self._threads.shutdown(wait=False, cancel_futures=True)

    def _translate_in_thread(self, text: str, source: str, target: str) -> str:
        try:
            translated = build_translator(self._config, source, target).translate(text)
        # deep-translator lets through whatever goes wrong inside it: its own errors,
        # requests' errors, KeyError or AttributeError on an unexpected answer, even
        # StopIteration (which must not reach an asyncio future).
        except Exception as error:
            raise TranslationUnavailable(
                f"{self.name} failed {source}→{target}: {self._describe(error)}"
            ) from error
        if not isinstance(translated, str) or not translated.strip():
            raise TranslationUnavailable(f"{self.name} answered {source}→{target} with no text")
        return translated

    def _describe(self, error: Exception) -> str:
        """The error, without the message's text or the API key, which would otherwise
        reach the log: deep-translator's errors start with the text, requests' errors
        carry the whole URL with its query, and AuthorizationException names the key."""
        if isinstance(error, BaseError):
            detail = f"{type(error).__name__}: {error.message}"
        elif isinstance(error, RequestException):
            detail = type(error).__name__
        else:
            detail = f"{type(error).__name__}: {error}"
        if self._config.api_key:
            detail = detail.replace(self._config.api_key, "***")
        return detail


def make_provider(config: TranslationConfig) -> TranslationProvider | None:
    """The configured provider, or None when translation is off ("none"). Makes no
    network call: each translation builds its own client."""
    if config.provider == "none":
        return None
    return DeepTranslatorProvider(config)
