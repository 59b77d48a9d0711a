"""Checks on what the marketplace and buyers send, shared by every API that accepts it: the
typed fields the APIs' body models are made of (their JSON Schema is the APIs' document),
and the same checks as functions for what comes by other ways (config, bot commands)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints, WithJsonSchema

from bridge.core.models import Context, ContextType
from bridge.errors import BadRequest, TooLarge

MAX_TEXT_CHARS = 10_000
MAX_NAME_CHARS = 200
MAX_TITLE_CHARS = 500
MAX_ID_CHARS = 200
MAX_CLIENT_ID_CHARS = 100
MAX_URL_CHARS = 2000

# Patterns of text fields: JSON Schema `pattern`s (ECMA-262 and Python read them alike),
# each with the refusal a caller reads when a value misses it.
NOT_BLANK: Final = r"^[^\x00]*[^\x00\s][^\x00]*$"
NO_WHITESPACE: Final = r"^[^\x00\s]+$"
LANGUAGE_CODE: Final = r"^[A-Za-z0-9-]+$"
WEB_URL: Final = r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s]+"
E_MAIL: Final = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PATTERN_REFUSALS: Final = {
    NOT_BLANK: "must not be empty",
    NO_WHITESPACE: "must not be empty or contain whitespace",
    LANGUAGE_CODE: "must be a language code such as 'en' or 'pt-BR'",
    WEB_URL: "must be an http or https URL",
    E_MAIL: "is not an e-mail address",
}


class Body(BaseModel):
    """What a caller sends: types are strict (no "5" for 5, no 1 for true); unknown keys
    are ignored, so that a marketplace may send more than the bridge reads."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


@dataclass(frozen=True)
class Refusal:
    """The errcode a field's refusal carries instead of M_INVALID_PARAM, as
    `Annotated[..., Refusal("BAZAAR_BAD_HOURS")]`."""

    errcode: str


def _number_as_text(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _whole_number_as_text(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


# Strings of at most so many characters, matching a pattern (most: not blank).
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS, pattern=NOT_BLANK)]
Name = Annotated[str, StringConstraints(max_length=MAX_NAME_CHARS, pattern=NOT_BLANK)]
Title = Annotated[str, StringConstraints(max_length=MAX_TITLE_CHARS, pattern=NOT_BLANK)]
ClientID = Annotated[str, StringConstraints(max_length=MAX_CLIENT_ID_CHARS, pattern=NOT_BLANK)]
Code = Annotated[str, StringConstraints(max_length=64, pattern=NOT_BLANK)]
Url = Annotated[str, StringConstraints(max_length=MAX_URL_CHARS, pattern=WEB_URL)]
Language = Annotated[str, StringConstraints(max_length=16, pattern=LANGUAGE_CODE)]
Email = Annotated[str, StringConstraints(max_length=320, pattern=E_MAIL)]
# Marketplaces number their sellers, buyers and products: an id may come as a number.
ID = Annotated[
    str,
    BeforeValidator(_whole_number_as_text),
    StringConstraints(max_length=MAX_ID_CHARS, pattern=NO_WHITESPACE),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": MAX_ID_CHARS, "pattern": NO_WHITESPACE},
                {"type": "integer"},
            ]
        }
    ),
]


class Query(BaseModel):
    """A query string: every value arrives as text; numbers are ASCII digits."""

    model_config = ConfigDict(frozen=True, extra="ignore")


# A count or a sequence number in a query: ASCII digits (`int()` would take '٣'), few enough
# to fit every column it is compared with.
Digits = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,18}$")]


class AttachmentQuery(Query):
    thumbnail: Literal["0", "1", "true", "false"] | None = None


class SellerRef(Body):
    """The seller a body names, looked up before the rest of the body is checked."""

    seller_id: ID


class ContextBody(Body):
    """What a conversation is about: a product or an order, as the marketplace shows it."""

    type: Literal["product", "order", "general"]
    id: ID
    title: Title
    url: Url | None = None
    image_url: Url | None = None
    price: (
        Annotated[
            str,
            BeforeValidator(_number_as_text),
            StringConstraints(max_length=32, pattern=NOT_BLANK),
            WithJsonSchema({"anyOf": [{"type": "string", "maxLength": 32}, {"type": "number"}]}),
        ]
        | None
    ) = None
    currency: Annotated[str, StringConstraints(max_length=8, pattern=NOT_BLANK)] | None = None
    status: Code | None = None

    def context(self) -> Context:
        return Context(
            type=ContextType(self.type),
            id=self.id,
            title=self.title,
            url=self.url,
            image_url=self.image_url,
            price=self.price,
            currency=self.currency,
            status=self.status,
        )


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
