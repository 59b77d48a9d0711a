"""Typed identifiers, so a buyer id can't be passed where a room id is wanted."""

from __future__ import annotations

import secrets
import time
from typing import NewType

SiteID = NewType("SiteID", str)
SellerID = NewType("SellerID", str)
BuyerID = NewType("BuyerID", str)
ConversationID = NewType("ConversationID", str)
MessageID = NewType("MessageID", str)

UserID = NewType("UserID", str)
RoomID = NewType("RoomID", str)
EventID = NewType("EventID", str)


def _sortable_id(prefix: str) -> str:
    # Millisecond timestamp first so ids sort roughly by creation, then 80 random bits.
    return f"{prefix}{int(time.time() * 1000):011x}{secrets.token_hex(10)}"


def new_conversation_id() -> ConversationID:
    return ConversationID(_sortable_id("c"))


def new_message_id() -> MessageID:
    return MessageID(_sortable_id("m"))


def new_offer_id() -> str:
    return _sortable_id("o")


def new_feedback_id() -> str:
    return _sortable_id("f")


def attachment_id(message_id: MessageID, index: int) -> str:
    """Attachments are numbered within their message, so the id leads to the message."""
    return f"{message_id}.{index}"


def message_of_attachment(attachment: str) -> MessageID | None:
    message_id, dot, index = attachment.rpartition(".")
    if not dot or not index.isdigit() or not message_id.startswith("m"):
        return None
    return MessageID(message_id)
