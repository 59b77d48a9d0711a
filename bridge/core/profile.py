"""The buyer's profile as the seller sees it: what the marketplace may send (checked here),
what a site shares of it, the card the bot posts, and `!profile`. Pure but for the command,
which reads the store."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

from bridge.core.commands import Command, RoomCall
from bridge.core.ids import BuyerID, SiteID
from bridge.core.models import Buyer, Site
from bridge.core.validation import optional_text
from bridge.errors import BadRequest, TooLarge

MAX_PHONE_CHARS = 40
MAX_SUMMARY_BYTES = 16 * 1024
# Digits, spaces, "+", "-" and parentheses, with at least one digit.
_PHONE = re.compile(r"[0-9 +()\-]*[0-9][0-9 +()\-]*")
# Keys of the summary the card names in words, in this order; others follow as they come.
_KNOWN_KEYS = ("orders_count", "last_order", "address", "zone")
_LAST_ORDER_KEYS = ("date", "total", "status", "url")
MAX_CARD_VALUE_CHARS = 300


def parse_phone(value: Any) -> str | None:
    phone = optional_text(value, "phone", limit=MAX_PHONE_CHARS)
    if phone is not None and not _PHONE.fullmatch(phone):
        raise BadRequest("'phone' may hold only digits, spaces, '+', '-' and parentheses")
    return phone


def parse_summary(value: Any) -> dict[str, Any] | None:
    """Any JSON object, at most 16 KB as compact UTF-8 JSON."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("'summary' must be an object")
    try:
        size = len(_compact(value).encode())
    except (TypeError, ValueError) as error:
        raise BadRequest(f"'summary' is not plain JSON: {error}") from None
    if size > MAX_SUMMARY_BYTES:
        raise TooLarge(
            f"'summary' is {size} bytes as JSON, more than {MAX_SUMMARY_BYTES}",
            "BAZAAR_SUMMARY_TOO_LARGE",
        )
    return value


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def shared_profile(buyer: Buyer, share_contact: bool) -> dict[str, Any]:
    """What a site lets the seller see of the buyer: the content of the rooms'
    `io.bazaar.buyer` state. E-mail and phone only where the site shares contacts."""
    shared: dict[str, Any] = {"buyer_id": buyer.buyer_id, "name": buyer.name}
    if buyer.profile_url is not None:
        shared["profile_url"] = buyer.profile_url
    if buyer.summary is not None:
        shared["summary"] = buyer.summary
    if share_contact:
        if buyer.email is not None:
            shared["email"] = buyer.email
        if buyer.phone is not None:
            shared["phone"] = buyer.phone
    return shared


def profile_card(buyer: Buyer, share_contact: bool) -> str:
    """The profile as the bot's plain-text notice (no HTML: nothing to escape)."""
    shared = shared_profile(buyer, share_contact)
    lines = [f"Buyer: {buyer.name}"]
    if "email" in shared:
        lines.append(f"E-mail: {shared['email']}")
    if "phone" in shared:
        lines.append(f"Phone: {shared['phone']}")
    if "profile_url" in shared:
        lines.append(f"Profile: {shared['profile_url']}")
    summary: Mapping[str, Any] = shared.get("summary") or {}
    if "orders_count" in summary:
        lines.append(f"Orders: {_shown(summary['orders_count'])}")
    last = summary.get("last_order")
    if isinstance(last, Mapping):
        order_id = last.get("id")
        parts = [f"#{_shown(order_id)}"] if order_id is not None else []
        parts += [_shown(last[key]) for key in _LAST_ORDER_KEYS if last.get(key) is not None]
        if parts:
            lines.append(f"Last order: {' · '.join(parts)}")
    elif last is not None:
        lines.append(f"Last order: {_shown(last)}")
    if "address" in summary:
        lines.append(f"Address: {_shown(summary['address'])}")
    if "zone" in summary:
        lines.append(f"Zone: {_shown(summary['zone'])}")
    for key, value in summary.items():
        if key not in _KNOWN_KEYS and value is not None:
            lines.append(f"{key}: {_shown(value)}")
    return "\n".join(lines)


def _shown(value: Any) -> str:
    """A summary value on one line, cut to a readable length."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, Mapping):
        text = ", ".join(
            f"{key}: {_shown(item)}" for key, item in value.items() if item is not None
        )
    elif isinstance(value, list):
        text = ", ".join(_shown(item) for item in value)
    else:
        text = _compact(value)
    text = " ".join(text.split())
    if len(text) > MAX_CARD_VALUE_CHARS:
        text = text[: MAX_CARD_VALUE_CHARS - 1] + "…"
    return text


class BuyerLookup(Protocol):
    async def get_buyer(self, site: SiteID, buyer_id: BuyerID) -> Buyer | None: ...


class ProfileCommand:
    """`!profile` in a conversation room: the buyer's card again."""

    def __init__(self, store: BuyerLookup, sites: Mapping[SiteID, Site]) -> None:
        self._store = store
        self._sites = sites

    def command(self) -> Command[RoomCall]:
        return Command(
            "profile", ("!profile — what the shop tells you about this buyer",), self._run
        )

    async def _run(self, call: RoomCall) -> str:
        conversation = call.conversation
        buyer = await self._store.get_buyer(conversation.site, conversation.buyer_id)
        if buyer is None:
            return "The shop has told nothing about this buyer."
        site = self._sites.get(conversation.site)
        return profile_card(buyer, site is not None and site.share_buyer_contact)
