"""A bot notice that mentions people: their ids become matrix.to links in the formatted
body, and `m.mentions` says whom to notify (intentional mentions, Matrix 1.7). Pure."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from bridge.core.ids import UserID


def matrix_to(user_id: UserID) -> str:
    return f"https://matrix.to/#/{quote(user_id, safe='@:')}"


def mention_notice_content(text: str, user_ids: Sequence[UserID]) -> dict[str, Any]:
    """`text` as an `m.notice` whose occurrences of each user id link to that user (a client
    shows them as a pill with the user's name); the plain body keeps the ids as written."""
    formatted = html.escape(text, quote=False)
    ids = sorted(set(user_ids), key=len, reverse=True)
    if ids:
        pattern = re.compile("|".join(re.escape(html.escape(u, quote=False)) for u in ids))
        formatted = pattern.sub(
            lambda found: (
                f'<a href="{matrix_to(UserID(html.unescape(found.group(0))))}">{found.group(0)}</a>'
            ),
            formatted,
        )
    return {
        "msgtype": "m.notice",
        "body": text,
        "format": "org.matrix.custom.html",
        "formatted_body": formatted.replace("\n", "<br>"),
        "m.mentions": {"user_ids": sorted(set(user_ids))},
    }
