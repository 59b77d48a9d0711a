"""Reading typed values from one mapping of the config file, naming each failure by its
full key and noting which keys were read (the rest are warned of as unknown)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from bridge.config.sections import MIN_SECRET_LENGTH, ConfigError, is_placeholder


class Section:
    """Reads typed values from one mapping, naming each failure by its full key."""

    def __init__(self, raw: Any, key: str) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(key, "must be a mapping")
        self.raw = raw
        self.key = key
        self.read: set[str] = set()

    def get(self, name: str, default: Any = None) -> Any:
        self.read.add(name)
        return self.raw.get(name, default)

    def unknown(self) -> list[str]:
        """The keys of this section that nothing read: typos, or sections of a later
        version; the bridge warns of them by name."""
        return [self._name(str(name)) for name in self.raw if name not in self.read]

    def _name(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def text(self, name: str, default: str | None = None) -> str:
        value = self.get(name, default)
        if value is None:
            raise ConfigError(self._name(name), "is required")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(self._name(name), "must be a string")
        text = str(value).strip()
        if not text:
            raise ConfigError(self._name(name), "must not be empty")
        return text

    def optional_text(self, name: str) -> str | None:
        if self.get(name) in (None, ""):
            return None
        return self.text(name)

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        value = self.get(name, default)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self._name(name), "must be a whole number")
        if not low <= value <= high:
            raise ConfigError(self._name(name), f"must be between {low} and {high}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.get(name, default)
        if isinstance(value, str) and value.strip().lower() in (
            "true",
            "yes",
            "1",
            "false",
            "no",
            "0",
        ):
            value = value.strip().lower() in ("true", "yes", "1")
        if not isinstance(value, bool):
            raise ConfigError(self._name(name), "must be true or false")
        return value

    def url(self, name: str, default: str | None = None) -> str:
        value = self.text(name, default).rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(self._name(name), f"must be an http(s) URL, not {value!r}")
        return value

    def text_list(self, name: str, default: list[str]) -> tuple[str, ...]:
        value = self.get(name, default)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(self._name(name), "must be a list of strings")
        return tuple(item.strip() for item in value)

    def secret(self, name: str, *, required: bool) -> str:
        value = self.get(name)
        text = str(value).strip() if isinstance(value, str | int) else None
        if not required:
            return text or ""
        if text is None or is_placeholder(text):
            raise ConfigError(
                self._name(name), "is missing or a placeholder; set a long random value"
            )
        if len(text) < MIN_SECRET_LENGTH:
            raise ConfigError(
                self._name(name), f"is too short; use at least {MIN_SECRET_LENGTH} characters"
            )
        return text
