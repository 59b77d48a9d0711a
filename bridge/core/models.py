"""Domain records: frozen dataclasses that every layer passes around."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, NotRequired

from typing_extensions import TypedDict

from bridge.core.hours import WeeklyHours, WorkingHours
from bridge.core.ids import (
    BuyerID,
    ConversationID,
    EventID,
    MessageID,
    RoomID,
    SellerID,
    SiteID,
    UserID,
)


class Role(enum.StrEnum):
    OWNER = "owner"
    MANAGER = "manager"
    STAFF = "staff"


class ConversationState(enum.StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    BLOCKED = "blocked"


# Each enum's values as the JSON answers spell them (tests/core/test_views_shapes.py keeps
# them equal to the enums).
ConversationStateValue = Literal["active", "archived", "blocked"]


class ContextType(enum.StrEnum):
    PRODUCT = "product"
    ORDER = "order"
    GENERAL = "general"


ContextTypeValue = Literal["product", "order", "general"]


class SenderKind(enum.StrEnum):
    BUYER = "buyer"
    SELLER = "seller"
    SYSTEM = "system"


SenderValue = Literal["buyer", "seller", "system"]


class Side(enum.StrEnum):
    """The two sides of a conversation, e.g. who blocked whom."""

    BUYER = "buyer"
    SELLER = "seller"


SideValue = Literal["buyer", "seller"]


class MessageStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    READ = "read"
    FAILED = "failed"


MessageStatusValue = Literal["pending", "sent", "read", "failed"]


@dataclass(frozen=True)
class Member:
    """A person who answers for a seller, with their own Matrix account."""

    user_id: UserID
    role: str


@dataclass(frozen=True)
class Seller:
    site: SiteID
    seller_id: SellerID
    name: str
    language: str
    email: str | None = None
    chat_enabled: bool = True
    greeting: str | None = None
    members: tuple[Member, ...] = ()
    # IANA time zone of `hours`; no hours means always open.
    timezone: str = "UTC"
    hours: WeeklyHours | None = None
    away_message: str | None = None
    # A copy of each buyer message by e-mail to the seller (once e-mail is set up).
    email_copies: bool = False

    @property
    def working_hours(self) -> WorkingHours:
        return WorkingHours(self.timezone, self.hours)


@dataclass(frozen=True)
class Buyer:
    site: SiteID
    buyer_id: BuyerID
    name: str
    language: str | None = None
    email: str | None = None
    phone: str | None = None
    avatar_url: str | None = None
    profile_url: str | None = None
    # What the marketplace wants the seller to see (orders count, last order, address…).
    summary: dict[str, Any] | None = field(default=None, hash=False)


class ContextView(TypedDict):
    """What a conversation is about; a detail the marketplace did not give is left out."""

    type: ContextTypeValue
    id: str
    title: str
    url: NotRequired[str]
    image_url: NotRequired[str]
    price: NotRequired[str]
    currency: NotRequired[str]
    status: NotRequired[str]
    # Present, and "buyer", when the buyer's widget gave the context.
    supplied_by: NotRequired[Literal["buyer"]]


@dataclass(frozen=True)
class Context:
    """What a conversation is about: a product, an order, or nothing in particular."""

    type: ContextType
    id: str
    title: str
    url: str | None = None
    image_url: str | None = None
    price: str | None = None
    currency: str | None = None
    status: str | None = None
    # Given by the buyer's widget, not by the marketplace: the seller is told so.
    from_buyer: bool = False

    def to_json(self) -> ContextView:
        raw: ContextView = {"type": self.type.value, "id": self.id, "title": self.title}
        for key in ("url", "image_url", "price", "currency", "status"):
            value = getattr(self, key)
            if value is not None:
                raw[key] = value
        if self.from_buyer:
            raw["supplied_by"] = "buyer"
        return raw

    def as_told_by_buyer(self) -> Context:
        """What a buyer may say a conversation is about: the product by its id, title and
        link; never a price or an order's status, which only the marketplace knows."""
        return replace(self, price=None, currency=None, status=None, from_buyer=True)


@dataclass(frozen=True)
class Conversation:
    site: SiteID
    conversation_id: ConversationID
    seller_id: SellerID
    buyer_id: BuyerID
    context: Context
    state: ConversationState
    room_id: RoomID | None
    created_at: datetime
    last_message_at: datetime | None = None
    unread_buyer: int = 0
    unread_seller: int = 0
    translation_enabled: bool = True
    # Which sides of the seller–buyer pair block the other (the state is then BLOCKED).
    blocked_by: frozenset[Side] = frozenset()
    # The seller's own words for it (a delivery zone, a topic), sorted.
    labels: tuple[str, ...] = ()
    # The member who answers this conversation, when one was assigned.
    assignee: UserID | None = None
    # Since when the buyer waits for a member's answer (core/response_time.py); None: nobody.
    waiting_since: datetime | None = None


@dataclass(frozen=True)
class Original:
    text: str
    lang: str


class AttachmentKind(enum.StrEnum):
    IMAGE = "image"  # shown inline
    FILE = "file"  # offered as a download


AttachmentKindValue = Literal["image", "file"]


@dataclass(frozen=True)
class Thumbnail:
    content_type: str
    width: int
    height: int
    size: int
    sha256: str | None = None
    mxc: str | None = None


@dataclass(frozen=True)
class Attachment:
    """A file carried with a message. Its bytes live in the bridge's media store under
    `sha256` (known once checked), and in the homeserver's media repository under `mxc`."""

    attachment_id: str
    kind: AttachmentKind
    name: str
    content_type: str
    size: int
    sha256: str | None = None
    mxc: str | None = None
    width: int | None = None
    height: int | None = None
    thumbnail: Thumbnail | None = None


@dataclass(frozen=True)
class TranslationNote:
    """How a message's text came to be in the reader's language.

    `failed` says the provider was asked and did not answer in time or at all: the text is
    then the original, delivered untranslated."""

    source: str
    target: str
    provider: str
    failed: bool = False


@dataclass(frozen=True)
class Message:
    message_id: MessageID
    conversation_id: ConversationID
    sender: SenderKind
    sender_name: str
    text: str
    lang: str | None
    status: MessageStatus
    created_at: datetime
    client_id: str | None = None
    sender_user_id: UserID | None = None
    event_id: EventID | None = None
    original: Original | None = None
    edited_at: datetime | None = None
    deleted: bool = False
    html: str | None = None
    attachments: tuple[Attachment, ...] = field(default=())
    translation: TranslationNote | None = None
    # Why a failed message could not reach the room; None otherwise.
    error: str | None = None
    # Sent by the bridge for the seller (a greeting, an away reply), not by a person.
    automatic: bool = False


@dataclass(frozen=True)
class Template:
    """A seller's canned reply; `position` orders them, hidden ones are kept but not listed."""

    site: SiteID
    seller_id: SellerID
    name: str
    text: str
    position: float = 0.0
    visible: bool = True
    # One file that goes with the text (a price list, a size chart); its bytes are kept
    # by sha256 like a buyer's upload.
    attachment: Attachment | None = None


@dataclass(frozen=True)
class Feedback:
    """What a buyer left in the feedback form while the seller's chat was off."""

    feedback_id: str
    site: SiteID
    seller_id: SellerID
    text: str
    contact: str | None
    created_at: datetime
    buyer_id: BuyerID | None = None


@dataclass(frozen=True)
class Site:
    """A marketplace connected to the bridge, as far as the domain needs to know it."""

    site_id: SiteID
    name: str
    language: str
    has_webhook: bool
    admins: tuple[UserID, ...] = ()
    # The buyer's e-mail and phone go into the rooms only when the site says so.
    share_buyer_contact: bool = False
    # The currency of the shop's prices, where a conversation's context names none.
    currency: str | None = None


@dataclass(frozen=True)
class SellerSpace:
    """The Matrix Space the bot keeps for a seller: a section per conversation state and
    a management room."""

    space_id: RoomID
    sections: dict[ConversationState, RoomID]
    management_id: RoomID
    marketplace_id: RoomID | None = None
    # The section of the rooms whose buyer waits for an answer; made when first needed.
    unanswered_id: RoomID | None = None

    @property
    def rooms(self) -> tuple[RoomID, ...]:
        rooms = (self.space_id, *self.sections.values(), self.management_id)
        rooms = (*rooms, self.marketplace_id) if self.marketplace_id else rooms
        return (*rooms, self.unanswered_id) if self.unanswered_id else rooms
