"""Translation adapters: deep-translator providers and lingua language detection, behind
the domain's `TranslationProvider` and `LanguageDetector` ports (the cache is in `store/`)."""

from bridge.translation.detection import LinguaDetector
from bridge.translation.providers import DeepTranslatorProvider, make_provider

__all__ = ["DeepTranslatorProvider", "LinguaDetector", "make_provider"]
