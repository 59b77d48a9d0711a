"""Putting a message into its reader's language: asks the cache, then the provider, and
never holds a message back when the provider fails (it goes out as written, marked)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from bridge.core.metrics import NO_METER, Meter
from bridge.core.models import Original, TranslationNote
from bridge.core.ports import (
    LanguageDetector,
    TranslationProvider,
    TranslationUnavailable,
)
from bridge.core.storage import TranslationCache

logger = logging.getLogger(__name__)

_SUBTAG_SEPARATOR = re.compile(r"[-_]")


@dataclass(frozen=True)
class Rendering:
    """A text as one reader gets it.

    `text` is what the reader sees: the translation, or the text as written. `original` is
    set when `text` is a translation. `note` is set whenever a translation was attempted,
    with `failed=True` when the provider let us down and `text` is the text as written."""

    text: str
    original: Original | None
    note: TranslationNote | None


def primary_language(code: str) -> str:
    """The lower-case primary subtag of a language tag: "en-US" and "EN" are both "en"."""
    return _SUBTAG_SEPARATOR.split(code.strip(), maxsplit=1)[0].lower()


def has_letters(text: str) -> bool:
    """Whether there is anything to translate: "12345", "!!!" and "👍" have no letters."""
    return any(character.isalpha() for character in text)


class Translations:
    """The bridge's one way to translate a message, shared by both directions."""

    def __init__(
        self,
        provider: TranslationProvider | None,
        cache: TranslationCache,
        detector: LanguageDetector | None,
        *,
        pause_after_failure: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        meter: Meter = NO_METER,
    ) -> None:
        self._provider = provider
        self._meter = meter
        self._cache = cache
        self._detector = detector
        # After a failure the provider is left alone for a while: a provider that is down
        # would otherwise cost every message the whole timeout.
        self._pause = pause_after_failure
        self._clock = clock
        self._paused_until = 0.0
        # Counted for tests and benchmarks: how often the provider was asked, and how often
        # the cache spared that.
        self.provider_calls = 0
        self.cache_hits = 0

    @property
    def enabled(self) -> bool:
        """A provider is configured."""
        return self._provider is not None

    def detect(self, text: str) -> str | None:
        """The ISO 639-1 code of the text's language, or None when there is no detector or
        it is unsure."""
        if self._detector is None or not has_letters(text):
            return None
        return self._detector.detect(text)

    async def render(self, text: str, source: str | None, target: str | None) -> Rendering:
        """`text`, written in `source`, as a reader of `target` gets it."""
        as_written = Rendering(text, None, None)
        if self._provider is None or source is None or target is None:
            return as_written
        source, target = primary_language(source), primary_language(target)
        if not source or not target or source == target or not has_letters(text):
            return as_written

        name = self._provider.name
        translated = await self._cache.cached_translation(name, source, target, text)
        untranslated = Rendering(text, None, TranslationNote(source, target, name, failed=True))
        if translated is not None:
            self.cache_hits += 1
            self._meter.translation_cached()
        elif self._clock() < self._paused_until:
            return untranslated
        else:
            self.provider_calls += 1
            self._meter.translation_asked()
            try:
                translated = await self._provider.translate(text, source, target)
            except TranslationUnavailable as error:
                self._paused_until = self._clock() + self._pause
                self._meter.translation_failed()
                logger.warning(
                    "Delivering a message untranslated: %s could not translate %s→%s (%s); "
                    "not asking it again for %.0f s",
                    name,
                    source,
                    target,
                    error,
                    self._pause,
                )
                return untranslated
            await self._cache.keep_translation(name, source, target, text, translated)
        return Rendering(translated, Original(text, source), TranslationNote(source, target, name))
