"""Matrix HTML is hostile until cleaned: an allow-list keeps formatting and drops the rest."""

from __future__ import annotations

import nh3

_TAGS = {
    "a",
    "b",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "sub",
    "sup",
    "u",
    "ul",
}
_ATTRIBUTES = {"a": {"href"}}
_SCHEMES = {"http", "https", "mailto"}


def clean_html(formatted_body: str) -> str | None:
    """The formatting of a message, safe to put in a page; None when nothing is left."""
    cleaned = nh3.clean(
        formatted_body,
        tags=_TAGS,
        # A reply's quoted fallback is noise outside Matrix.
        clean_content_tags={"mx-reply", "script", "style"},
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    ).strip()
    return cleaned or None
