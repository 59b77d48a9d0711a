"""Placeholders in a seller's greeting, away message and templates: `{buyer}`, `{seller}`,
`{member}`, `{title}`, `{order}`, `{url}`. An unknown or empty one becomes ""; braces
around anything but a lower-case word stay as written, so "{5 pcs}" is not eaten."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.core.models import Buyer, ContextType, Conversation, Seller

_PLACEHOLDER = re.compile(r"\{([a-z_]{1,20})\}")
KNOWN = ("buyer", "seller", "member", "title", "order", "url")


@dataclass(frozen=True)
class Filling:
    """What the placeholders stand for in one conversation."""

    buyer: str = ""
    seller: str = ""
    member: str = ""
    title: str = ""
    order: str = ""
    url: str = ""

    @classmethod
    def of(
        cls, conversation: Conversation, seller: Seller, buyer: Buyer | None, member: str = ""
    ) -> Filling:
        context = conversation.context
        return cls(
            buyer=buyer.name if buyer else "",
            seller=seller.name,
            member=member,
            title=context.title,
            order=context.id if context.type == ContextType.ORDER else "",
            url=context.url or "",
        )

    def fill(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in KNOWN:
                return str(getattr(self, name))
            # Lower-case words in braces are meant as placeholders: unknown ones become "".
            return ""

        return _PLACEHOLDER.sub(value, text)
