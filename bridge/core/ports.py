"""The ports through which the domain talks to storage and to Matrix.

`store/` implements `Repository`; `matrix/` implements `MatrixPort`. The domain never
sees a database row, an HTTP response or a nio type.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bridge.core.events import Event, EventsFor
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
from bridge.core.models import (
    Attachment,
    Buyer,
    Context,
    Conversation,
    ConversationState,
    Member,
    Message,
    Original,
    Seller,
    SenderKind,
    Side,
    TranslationNote,
)


class HomeserverUnavailable(Exception):
    """The homeserver could not be reached or answered with a server error: try again later.

    `maybe_done` says the request may have been carried out all the same: it reached the
    homeserver and the answer was lost (a cut connection, a timeout, a server error). It is
    False only when the request surely did nothing (no connection, or rate limited)."""

    def __init__(self, message: str, *, maybe_done: bool = True) -> None:
        super().__init__(message)
        self.maybe_done = maybe_done


class MatrixRejected(Exception):
    """The homeserver refused a request: retrying the same request now won't help.

    `permanent` says no later try can help either: the request itself is what Matrix
    refuses (a malformed or too long name, a body over a limit). Otherwise the refusal is
    about the server's state (a membership, a token), which may change."""

    def __init__(self, errcode: str, error: str, *, permanent: bool = False) -> None:
        super().__init__(f"{errcode}: {error}")
        self.errcode = errcode
        self.error = error
        self.permanent = permanent


class ConversationBlocked(Exception):
    """A buyer's message met a block that was stored first: it is not stored."""


class TranslationUnavailable(Exception):
    """The translation provider failed or did not answer in time."""


class TranslationProvider(Protocol):
    """One translation service (Google, DeepL, LibreTranslate, …)."""

    @property
    def name(self) -> str: ...

    async def translate(self, text: str, source: str, target: str) -> str:
        """`text` from `source` into `target` (ISO 639-1 codes); raises
        TranslationUnavailable on any failure, including a timeout."""


class LanguageDetector(Protocol):
    def detect(self, text: str) -> str | None:
        """The ISO 639-1 code of the text's language, or None when unsure."""


class TranslationCache(Protocol):
    async def cached_translation(
        self, provider: str, source: str, target: str, text: str
    ) -> str | None: ...

    async def keep_translation(
        self, provider: str, source: str, target: str, text: str, translated: str
    ) -> None:
        """Remember a translation; keeping the same one twice is harmless."""


@dataclass(frozen=True)
class StoredFrame:
    seq: int
    type: str
    conversation_id: ConversationID
    payload: dict[str, Any]


@dataclass(frozen=True)
class OutgoingWebhook:
    delivery_id: str
    site: SiteID
    body: bytes
    attempts: int


@dataclass(frozen=True)
class StoredTransaction:
    txn_id: str
    events: list[dict[str, Any]]


class Repository(Protocol):
    async def put_seller(self, seller: Seller) -> Seller: ...

    async def get_seller(self, site: SiteID, seller_id: SellerID) -> Seller | None: ...

    async def list_sellers(self, site: SiteID) -> list[Seller]: ...

    async def put_buyer(self, buyer: Buyer) -> Buyer: ...

    async def get_buyer(self, site: SiteID, buyer_id: BuyerID) -> Buyer | None: ...

    async def create_conversation(
        self, conversation: Conversation, events: Sequence[Event]
    ) -> tuple[Conversation, bool]:
        """Store a new conversation, or return the one with the same seller, buyer and context."""

    async def get_conversation(
        self, site: SiteID, conversation_id: ConversationID
    ) -> Conversation | None: ...

    async def get_conversation_by_id(
        self, conversation_id: ConversationID
    ) -> Conversation | None: ...

    async def conversation_by_room(self, room_id: RoomID) -> Conversation | None: ...

    async def list_conversations(
        self,
        site: SiteID,
        *,
        seller_id: SellerID | None = None,
        buyer_id: BuyerID | None = None,
        state: ConversationState | None = None,
    ) -> list[Conversation]: ...

    async def conversations_needing_delivery(self) -> list[Conversation]:
        """Conversations with no room yet or with buyer messages still pending."""

    async def blocks(self, site: SiteID, seller_id: SellerID, buyer_id: BuyerID) -> frozenset[Side]:
        """Which sides of this seller–buyer pair have blocked the other."""

    async def set_block(
        self,
        site: SiteID,
        seller_id: SellerID,
        buyer_id: BuyerID,
        side: Side,
        blocked: bool,
        events_for: Callable[[Conversation], Sequence[Event]],
    ) -> list[Conversation]: ...

    async def set_state(
        self,
        conversation_ids: Sequence[ConversationID],
        state: ConversationState,
        events_for: Callable[[Conversation], Sequence[Event]],
        *,
        only_from: ConversationState,
    ) -> list[Conversation]: ...

    async def idle_conversations(self, quiet_since: datetime) -> list[ConversationID]: ...

    async def mark_members_stale(
        self, conversation_ids: Sequence[ConversationID], stale: bool
    ) -> None:
        """Note (or clear) that the rooms' members and power levels must follow a change."""

    async def conversations_with_stale_members(self) -> list[ConversationID]: ...

    async def set_room(self, conversation_id: ConversationID, room_id: RoomID) -> None: ...

    async def set_context(self, conversation_id: ConversationID, context: Context) -> None: ...

    async def add_message(self, message: Message, events: Sequence[Event]) -> tuple[Message, bool]:
        """Store a message unless its client id or event id is stored; return the stored one.
        A new buyer message in a conversation that is blocked by then raises
        ConversationBlocked, decided in the same transaction as the insert."""

    async def get_message(self, message_id: MessageID) -> Message | None: ...

    async def message_by_client_id(
        self, conversation_id: ConversationID, client_id: str
    ) -> Message | None: ...

    async def set_attachments(
        self, message_id: MessageID, attachments: Sequence[Attachment]
    ) -> Message: ...

    async def set_rendering(
        self,
        message_id: MessageID,
        text: str,
        original: Original | None,
        note: TranslationNote | None,
        events: EventsFor,
    ) -> Message: ...

    async def set_translation_enabled(
        self, conversation_id: ConversationID, enabled: bool
    ) -> None: ...

    async def message_by_event(self, event_id: EventID) -> Message | None: ...

    async def list_messages(
        self, conversation_id: ConversationID, *, after: MessageID | None, limit: int
    ) -> list[Message]: ...

    async def pending_messages(self, conversation_id: ConversationID) -> list[Message]:
        """Buyer messages not yet in the room, oldest first."""

    async def mark_delivered(
        self, message_id: MessageID, event_id: EventID, events: EventsFor
    ) -> Message: ...

    async def requeue(self, message_id: MessageID, events: EventsFor) -> Message:
        """A failed message becomes pending again, for another try; its error is cleared."""

    async def mark_failed(self, message_id: MessageID, error: str, events: EventsFor) -> Message:
        """The message can't reach the room; `error` says why, for the buyer and marketplace."""

    async def edit_message(
        self,
        message_id: MessageID,
        text: str,
        html: str | None,
        edited_at: datetime,
        events: EventsFor,
        *,
        original: Original | None = None,
        note: TranslationNote | None = None,
    ) -> Message: ...

    async def mark_read(
        self,
        conversation_id: ConversationID,
        reader: SenderKind,
        up_to: MessageID,
        events: EventsFor,
    ) -> list[Message]:
        """The reader has read the other side's messages up to `up_to`; returns those that
        became read."""

    async def last_messages(
        self, conversation_ids: Sequence[ConversationID]
    ) -> dict[ConversationID, Message]: ...

    async def list_messages_before(
        self, conversation_id: ConversationID, *, before: MessageID | None, limit: int
    ) -> list[Message]:
        """The `limit` messages just before `before` (or the latest), oldest first."""

    # The buyer's feed (stream frames).
    async def add_frames(self, frames: Sequence[Event]) -> None: ...

    async def frames_since(
        self, site: SiteID, buyer_id: BuyerID, since: int, limit: int
    ) -> list[StoredFrame]: ...

    async def latest_frame(self, site: SiteID, buyer_id: BuyerID) -> int: ...

    async def delete_message(
        self, message_id: MessageID, deleted_at: datetime, events: EventsFor
    ) -> Message: ...

    # Appservice transactions: stored before the homeserver hears 200, applied once.
    async def store_transaction(self, txn_id: str, events: list[dict[str, Any]]) -> bool: ...

    async def unprocessed_transactions(self) -> list[StoredTransaction]: ...

    async def mark_transaction_processed(self, txn_id: str) -> None: ...

    # The webhook outbox.
    async def due_webhooks(
        self, site: SiteID, now: datetime, limit: int
    ) -> list[OutgoingWebhook]: ...

    async def next_webhook_attempt(self, site: SiteID) -> datetime | None:
        """When the oldest undelivered webhook of the site is due, or None when none waits."""

    async def mark_webhook_delivered(self, delivery_id: str, at: datetime) -> None: ...

    async def defer_webhook(
        self, delivery_id: str, next_attempt_at: datetime, error: str
    ) -> None: ...


class MediaPort(Protocol):
    """Attachments' bytes: checked and cleaned on the way in, kept by their sha256."""

    max_bytes: int

    async def accept_upload(self, data: bytes, name: str | None) -> Attachment:
        """Check a buyer's file (real type, size, allow-list), strip an image's metadata and
        make its thumbnail, keep the bytes; raises BadRequest/TooLarge on bad input. The
        attachment id is left empty for the caller to set."""

    async def keep(self, data: bytes) -> str:
        """Keep bytes as they are (a seller's file fetched from Matrix); their sha256."""

    async def read(self, sha256: str) -> bytes | None: ...

    async def checked_type(self, data: bytes) -> str | None:
        """The type the bytes really are, when it is one the bridge lets through. Looking
        through a big office file takes seconds, so it runs off the event loop."""


class MatrixPort(Protocol):
    async def create_conversation_room(
        self,
        conversation: Conversation,
        seller: Seller,
        buyer: Buyer,
        members: Sequence[Member],
        site_name: str,
    ) -> RoomID: ...

    async def send_buyer_message(
        self, conversation: Conversation, buyer: Buyer, message: Message
    ) -> EventID: ...

    async def find_buyer_messages(
        self,
        conversation: Conversation,
        buyer: Buyer,
        message_ids: Collection[MessageID],
        since: datetime,
    ) -> dict[MessageID, EventID]:
        """Which of these buyer messages are in the room already, and as which event, looking
        back to `since` (the oldest one's creation): after a send whose answer was lost."""

    async def update_context(self, conversation: Conversation, buyer: Buyer) -> None: ...

    async def upload_as_buyer(self, buyer: Buyer, data: bytes, content_type: str, name: str) -> str:
        """Put a buyer's file in the homeserver's media repository as the buyer's ghost;
        returns the mxc:// URI."""

    async def download(self, mxc: str, max_bytes: int) -> bytes:
        """The bytes behind an mxc:// URI (a seller's file)."""

    async def sync_members(
        self,
        conversation: Conversation,
        seller: Seller,
        buyer: Buyer,
        members: Sequence[Member],
        blocked_by: frozenset[Side],
        site_name: str,
    ) -> None:
        """Invite missing members, remove anyone else, and set the power levels (and the
        conversation's state) to match the roles and blocks."""

    async def send_notice(self, room_id: RoomID, text: str, key: str | None = None) -> None:
        """The bot says something in a room; the same `key` is said only once."""

    async def marketplace_room(
        self, seller: Seller, members: Sequence[Member], site_name: str
    ) -> RoomID:
        """The room the seller's members share with the site's admins (made when missing)."""

    async def display_name(self, user_id: UserID) -> str | None: ...

    async def send_read_receipt(
        self, conversation: Conversation, buyer: Buyer, event_id: EventID
    ) -> None: ...

    async def set_typing(self, conversation: Conversation, buyer: Buyer, typing: bool) -> None: ...
