"""Matrix ids of ghosts and rooms, escaped to the user-id grammar reversibly.

A buyer id may hold any characters; a Matrix localpart only `a-z 0-9 . _ = - /`. Upper-case
letters become `_` + the lower-case letter, `_` becomes `__`, and anything else outside
`a-z 0-9 . -` becomes `=xx` (its UTF-8 bytes in hex), so `Anna_K` is `_anna___k`.
"""

from __future__ import annotations

import re

from bridge.core.ids import BuyerID, ConversationID, SiteID, UserID

# The spec: "The length of a user ID, including the @ sigil and the domain, MUST NOT
# exceed 255 bytes."
MAX_USER_ID_BYTES = 255

_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
_ESCAPE = re.compile(r"__|_[a-z]|=[0-9a-f]{2}(?:=[0-9a-f]{2})*")


def escape_localpart(value: str) -> str:
    out: list[str] = []
    for char in value:
        if char in _PLAIN:
            out.append(char)
        elif char == "_":
            out.append("__")
        elif "A" <= char <= "Z":
            out.append("_" + char.lower())
        else:
            out.extend(f"={byte:02x}" for byte in char.encode("utf-8"))
    return "".join(out)


def unescape_localpart(value: str) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "__":
            return "_"
        if token[0] == "_":
            return token[1].upper()
        return bytes.fromhex(token.replace("=", "")).decode("utf-8")

    return _ESCAPE.sub(replace, value)


class MatrixNames:
    """Names the bridge gives in Matrix, from the config's prefix and domain."""

    def __init__(self, domain: str, ghost_prefix: str, bot_username: str) -> None:
        self.domain = domain
        self.ghost_prefix = ghost_prefix
        self.bot = UserID(f"@{bot_username}:{domain}")

    def ghost(self, site: SiteID, buyer_id: BuyerID) -> UserID:
        return UserID(f"@{self.ghost_prefix}{site}_{escape_localpart(buyer_id)}:{self.domain}")

    def ghost_too_long(self, site: SiteID, buyer_id: BuyerID) -> str | None:
        """Why the buyer's ghost can't exist in Matrix (escaping may lengthen the id), or
        None when it can."""
        size = len(self.ghost(site, buyer_id).encode())
        if size <= MAX_USER_ID_BYTES:
            return None
        return (
            f"the buyer's Matrix user id would be {size} bytes, over Matrix's limit of "
            f"{MAX_USER_ID_BYTES} bytes"
        )

    def parse_ghost(self, user_id: str) -> tuple[SiteID, BuyerID] | None:
        """The site and buyer behind a ghost's user id, or None when it is not one of ours."""
        suffix = f":{self.domain}"
        start = f"@{self.ghost_prefix}"
        if not (user_id.startswith(start) and user_id.endswith(suffix)):
            return None
        site, separator, escaped = user_id[len(start) : -len(suffix)].partition("_")
        if not separator or not site or not escaped:
            return None
        try:
            buyer = unescape_localpart(escaped)
        except UnicodeDecodeError:  # `=ff` and the like: bytes no buyer id is made of
            return None
        if escape_localpart(buyer) != escaped:
            return None
        return SiteID(site), BuyerID(buyer)

    def is_ours(self, user_id: str) -> bool:
        return user_id == self.bot or self.parse_ghost(user_id) is not None

    def room_alias_localpart(self, site: SiteID, conversation_id: ConversationID) -> str:
        return f"{self.ghost_prefix}{site}_{conversation_id}"

    def room_alias(self, site: SiteID, conversation_id: ConversationID) -> str:
        return f"#{self.room_alias_localpart(site, conversation_id)}:{self.domain}"
