"""Offline language detection with lingua, among the languages the bridge is set up for
(`translation.detect_languages`): fewer candidates make short texts easier to tell apart."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable

import lingua

from bridge.config import ConfigError
from bridge.core.translation import has_letters

# lingua's confidence values sum to 1 over the candidate languages. A short text is
# called only when its best language leads the runner-up by this much. Measured on chat
# questions of 2–6 words in the 13 default languages: 0.15 names ~80% of them with one
# mistake in 80 (Ukrainian taken for Russian); 0.2 makes none but drops "Can I pay by
# card?" and "Where is my parcel?". A wrong language costs a garbled translation, no
# language only a missed one.
MIN_MARGIN = 0.15
# Below this many letters ("Да", "Ok") the statistics mean little; lingua's rule engine
# can still be sure ("Sí", "Иә"), and then it says so with a confidence of 1.
MIN_LETTERS = 3
# The start of a long message tells its language as well as the whole, at a fraction of
# the time (5,000 characters take ~8 ms, on the event loop).
SAMPLE_CHARS = 1000


class LinguaDetector:
    """A `LanguageDetector` over lingua.

    lingua's models take a second or two to load, so the detector is built on first use;
    call `warm_up()` at start-up to do that in a thread rather than on the event loop.
    An ISO 639-1 code lingua doesn't know is a configuration error, raised at once.
    """

    def __init__(self, languages: Iterable[str]) -> None:
        codes: list[lingua.IsoCode639_1] = []
        for language in languages:
            try:
                code = lingua.IsoCode639_1.from_str(language.strip().lower())
            except ValueError:
                raise ConfigError(
                    "translation.detect_languages",
                    f"{language!r} is not an ISO 639-1 code that lingua can detect",
                ) from None
            if code not in codes:
                codes.append(code)
        if len(codes) < 2:
            raise ConfigError("translation.detect_languages", "must name at least two languages")
        self._codes = tuple(codes)
        self._detector: lingua.LanguageDetector | None = None
        self._building = threading.Lock()

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(code.name.lower() for code in self._codes)

    async def warm_up(self) -> None:
        """Load the language models in a thread, so the first `detect` is quick."""
        await asyncio.to_thread(self._built)

    def detect(self, text: str) -> str | None:
        if not has_letters(text):
            return None
        values = self._built().compute_language_confidence_values(text[:SAMPLE_CHARS])
        best, runner_up = values[0], values[1]
        if best.value < 1.0:
            letters = sum(character.isalpha() for character in text[:SAMPLE_CHARS])
            if letters < MIN_LETTERS or best.value - runner_up.value < MIN_MARGIN:
                return None
        return best.language.iso_code_639_1.name.lower()

    def _built(self) -> lingua.LanguageDetector:
        detector = self._detector
        if detector is not None:
            return detector
        with self._building:
            if self._detector is None:
                self._detector = (
                    lingua.LanguageDetectorBuilder.from_iso_codes_639_1(*self._codes)
                    .with_preloaded_language_models()
                    .build()
                )
            return self._detector
