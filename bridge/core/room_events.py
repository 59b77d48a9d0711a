"""What happens in Matrix rooms, as the domain hears of it: each event of an appservice
transaction parsed once (by `matrix/incoming.py`) into one of these frozen records, and
the room it happened in classified once (`RoomKind`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bridge.core.ids import EventID, RoomID, SellerID, SiteID, UserID
from bridge.core.models import Attachment, Conversation


@dataclass(frozen=True)
class RoomMessage:
    """Someone's text or file message. A file's `text` is its caption (often empty)."""

    room_id: RoomID
    sender: UserID
    event_id: EventID
    text: str
    # Cleaned of anything but the allowed tags; None when the message has no formatting.
    html: str | None
    sent_at: datetime
    reply_to: EventID | None = None
    attachment: Attachment | None = None


@dataclass(frozen=True)
class MessageEdit:
    room_id: RoomID
    sender: UserID
    target: EventID
    text: str
    html: str | None
    edited_at: datetime


@dataclass(frozen=True)
class Redaction:
    room_id: RoomID
    sender: UserID
    target: EventID
    redacted_at: datetime


@dataclass(frozen=True)
class MembershipChange:
    room_id: RoomID
    sender: UserID
    subject: UserID
    membership: str
    # The name a user gave themselves on joining; None for any other change.
    display_name: str | None = None


@dataclass(frozen=True)
class PowerLevelsChange:
    room_id: RoomID
    sender: UserID


@dataclass(frozen=True)
class ReadReceipt:
    room_id: RoomID
    reader: UserID
    event_id: EventID


@dataclass(frozen=True)
class TypingChange:
    room_id: RoomID
    # Everyone typing in the room now.
    typing: frozenset[UserID]


RoomEvent = (
    RoomMessage
    | MessageEdit
    | Redaction
    | MembershipChange
    | PowerLevelsChange
    | ReadReceipt
    | TypingChange
)


@dataclass(frozen=True)
class ConversationRoom:
    conversation: Conversation


@dataclass(frozen=True)
class ManagementRoom:
    """A seller's management room: the bot takes the members' commands there."""

    room_id: RoomID
    site: SiteID
    seller_id: SellerID


@dataclass(frozen=True)
class SiteRoom:
    """A room of the marketplace's own, such as the admins' control room."""

    room_id: RoomID
    site: SiteID
    purpose: str


# A room the bridge knows; a room it doesn't (a Space, a stranger's) has no kind.
RoomKind = ConversationRoom | ManagementRoom | SiteRoom
