"""What the buyer's widget sends, as typed models: each checks a request before its handler
goes on, and its JSON Schema is that request's entry in `/widget/v1/openapi.json`."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from bridge.core.feedback import MAX_CONTACT_CHARS
from bridge.core.validation import (
    ID,
    MAX_TEXT_CHARS,
    NOT_BLANK,
    PATTERN_REFUSALS,
    Body,
    ClientID,
    ContextBody,
    Digits,
    Query,
    Text,
)

# A message's text, or none: a message sent again by its client id alone, e.g. one that
# carried a file, is a retry of the stored one.
TEXT_OR_NONE = rf"^$|{NOT_BLANK}"
PATTERN_REFUSALS[TEXT_OR_NONE] = PATTERN_REFUSALS[NOT_BLANK]


class StartBody(Body):
    """Ask a seller about a product: the page's product, as the buyer's page tells it."""

    seller_id: ID
    context: ContextBody


class MessageBody(Body):
    """A message; `client_id` makes a repeat harmless, and alone it retries a stored one."""

    client_id: ClientID
    text: (
        Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS, pattern=TEXT_OR_NONE)] | None
    ) = None


class FileMessageForm(Body):
    """A file with an optional caption (form fields beside the `file` part)."""

    client_id: ClientID
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)] = ""


class ReadBody(Body):
    """The buyer has seen every message up to this one."""

    up_to: ID


class TypingBody(Body):
    typing: bool


class FeedbackBody(Body):
    """A form for a seller whose chat is off: what the buyer wants and how to answer them."""

    text: Text
    contact: Annotated[str, StringConstraints(max_length=MAX_CONTACT_CHARS)] | None = None


class MessagesQuery(Query):
    limit: Digits | None = None
    before: str | None = None
    after: str | None = None


class StreamQuery(Query):
    """Frames after `since` (a frame's seq); none: from now on. A browser's WebSocket can't
    send a header, so the token may come as `access_token`."""

    since: Digits | None = None
    access_token: str | None = None
