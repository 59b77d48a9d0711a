"""Checks on what the marketplace and buyers send, shared by every API that accepts it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from bridge.core.models import Context, ContextType
from bridge.errors import BadRequest, TooLarge

MAX_TEXT_CHARS = 10_000
MAX_NAME_CHARS = 200
MAX_TITLE_CHARS = 500
MAX_ID_CHARS = 200
MAX_CLIENT_ID_CHARS = 100


def require_text(value: Any, key: str, *, limit: int = MAX_TEXT_CHARS) -> str:
    if value is None:
        raise BadRequest(f"'{key}' is required", "M_MISSING_PARAM")
    if not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a string")
    if not value.strip():
        raise BadRequest(f"'{key}' must not be empty")
    if "\x00" in value:
        raise BadRequest(f"'{key}' must not contain NUL characters")
    if len(value) > limit:
        raise TooLarge(f"'{key}' is longer than {limit} characters")
    return value


def optional_text(value: Any, key: str, *, limit: int = MAX_TEXT_CHARS) -> str | None:
    if value is None:
        return None
    return require_text(value, key, limit=limit)


def require_id(value: Any, key: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = require_text(value, key, limit=MAX_ID_CHARS)
    if text != text.strip() or any(ch.isspace() for ch in text):
        raise BadRequest(f"'{key}' must not contain whitespace")
    return text


def optional_url(value: Any, key: str) -> str | None:
    url = optional_text(value, key, limit=2000)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadRequest(f"'{key}' must be an http or https URL")
    return url


def require_language(value: Any, key: str) -> str:
    text = require_text(value, key, limit=16)
    if not all(ch.isalnum() or ch == "-" for ch in text):
        raise BadRequest(f"'{key}' must be a language code such as 'en' or 'pt-BR'")
    return text


def parse_context(raw: Any) -> Context:
    if not isinstance(raw, dict):
        raise BadRequest("'context' must be an object", "M_MISSING_PARAM" if raw is None else None)
    try:
        context_type = ContextType(str(raw.get("type")))
    except ValueError:
        kinds = ", ".join(kind.value for kind in ContextType)
        raise BadRequest(f"'context.type' must be one of {kinds}") from None
    price = raw.get("price")
    if isinstance(price, int | float) and not isinstance(price, bool):
        price = str(price)
    return Context(
        type=context_type,
        id=require_id(raw.get("id"), "context.id"),
        title=require_text(raw.get("title"), "context.title", limit=MAX_TITLE_CHARS),
        url=optional_url(raw.get("url"), "context.url"),
        image_url=optional_url(raw.get("image_url"), "context.image_url"),
        price=optional_text(price, "context.price", limit=32),
        currency=optional_text(raw.get("currency"), "context.currency", limit=8),
        status=optional_text(raw.get("status"), "context.status", limit=64),
    )
