"""What a seller's template may be, and how lists of templates read: the checks the API and
the commands share, the order by position, and `!t`'s choice by number or name."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from typing_extensions import TypedDict

from bridge.core.models import AttachmentKindValue, Template
from bridge.core.validation import MAX_TEXT_CHARS, require_text
from bridge.errors import BadRequest

MAX_TEMPLATE_NAME_CHARS = 64
# Letters and digits of any script, and "-", "_", ".": a name is one word to type after !t.
_NAME = re.compile(rf"[\w.-]{{1,{MAX_TEMPLATE_NAME_CHARS}}}")
# How much of a template's text a listing shows.
PREVIEW_CHARS = 60


# Checks, shared by the API and the commands.


def check_name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise BadRequest(
            f"A template's name is 1 to {MAX_TEMPLATE_NAME_CHARS} letters, digits, '-', '_' "
            "or '.', without spaces",
            "BAZAAR_BAD_TEMPLATE_NAME",
        )
    return value


def check_text(value: Any) -> str:
    return require_text(value, "text", limit=MAX_TEXT_CHARS)


def check_position(value: Any) -> float:
    """A finite number (JSON's, not a string of one)."""
    if not isinstance(value, bool) and isinstance(value, int | float):
        try:
            position = float(value)
        except OverflowError:
            position = math.inf
        if math.isfinite(position):
            return position
    raise BadRequest("'position' must be a number, such as 1 or 2.5")


def parse_position(typed: str) -> float:
    """A position as typed in a command."""
    try:
        value: Any = float(typed.strip())
    except ValueError:
        value = None
    return check_position(value)


def check_visible(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRequest("'visible' must be true or false")
    return value


# Order, numbering and lookup.


def ordered(templates: Sequence[Template]) -> list[Template]:
    return sorted(templates, key=lambda template: (template.position, template.name))


def next_position(templates: Sequence[Template]) -> float:
    """After the last one."""
    return math.floor(max((t.position for t in templates), default=0.0)) + 1.0


def pick(templates: Sequence[Template], said: str) -> Template | None:
    """The template `!t` means: its number in `templates` (1..n), else its name (as written,
    else ignoring case)."""
    if said.isascii() and said.isdigit():
        number = int(said)
        return templates[number - 1] if 1 <= number <= len(templates) else None
    exact = next((t for t in templates if t.name == said), None)
    if exact is not None:
        return exact
    folded = said.casefold()
    return next((t for t in templates if t.name.casefold() == folded), None)


def _position(value: float) -> str:
    return f"{value:g}"


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


def _file_note(template: Template) -> str:
    return f" [file: {template.attachment.name}]" if template.attachment else ""


def management_listing(templates: Sequence[Template]) -> str:
    """`!templates`: every template, hidden ones marked, with its position."""
    if not templates:
        return "No templates yet. Add one with !template add <name> <text>."
    lines = [f"Templates ({len(templates)}), in order:"]
    for template in ordered(templates):
        hidden = " [hidden]" if not template.visible else ""
        lines.append(
            f"{_position(template.position)}. {template.name}{hidden}{_file_note(template)}"
            f" — {_preview(template.text)}"
        )
    return "\n".join(lines)


def room_listing(visible: Sequence[Template]) -> str:
    """`!t`: the visible templates, numbered as `!t <number>` takes them."""
    if not visible:
        return (
            "No templates to send. Add them in the management room with "
            "!template add <name> <text>."
        )
    lines = ["Templates — say !t <number> or !t <name> to send one:"]
    lines += [
        f"{number}. {t.name}{_file_note(t)} — {_preview(t.text)}"
        for number, t in enumerate(visible, start=1)
    ]
    return "\n".join(lines)


class TemplateAttachmentView(TypedDict):
    """The file that goes with a template's text."""

    name: str
    kind: AttachmentKindValue
    content_type: str
    size: int
    width: int | None
    height: int | None


class TemplateView(TypedDict):
    """A seller's canned reply; `position` orders them, hidden ones are kept but not listed."""

    name: str
    text: str
    position: float
    visible: bool
    attachment: TemplateAttachmentView | None


class TemplateList(TypedDict):
    """A seller's templates, in order, hidden ones too."""

    templates: list[TemplateView]


def template_json(template: Template) -> TemplateView:
    attachment = template.attachment
    return {
        "name": template.name,
        "text": template.text,
        "position": template.position,
        "visible": template.visible,
        "attachment": None
        if attachment is None
        else {
            "name": attachment.name,
            "kind": attachment.kind.value,
            "content_type": attachment.content_type,
            "size": attachment.size,
            "width": attachment.width,
            "height": attachment.height,
        },
    }


# The ports the service uses.
