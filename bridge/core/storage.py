"""The ports through which the domain reaches the store, one per seam of the store: here
the conversations' own (parties, conversations, messages, the feed, the transaction log,
webhooks, rooms, translations); `core/seller_storage.py` has those of the seller's desk,
response times and e-mail.

Each service takes only the ports it uses, bundled in a small protocol of its own; the
store's one `SqlRepository` implements them all (`Repository`). No row of the database
reaches the domain: the store hands back the records of `core/models.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    Message,
    Original,
    Seller,
    SenderKind,
    Side,
    TranslationNote,
)
from bridge.core.room_events import RoomKind
from bridge.core.seller_storage import (
    AutomaticReplies,
    BuyerDigests,
    ConversationTags,
    FeedbackRecords,
    MailOutbox,
    ReplyTokens,
    ResponseWaits,
    TemplateRecords,
    Unsubscribes,
    WaitOpening,
    WaitRecords,
)


class ConversationBlocked(Exception):
    """A buyer's message met a block that was stored first: it is not stored."""


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


class Parties(Protocol):
    """The marketplace's sellers and buyers, as the bridge last heard of them."""

    async def put_seller(self, seller: Seller) -> Seller: ...

    async def get_seller(self, site: SiteID, seller_id: SellerID) -> Seller | None: ...

    async def list_sellers(self, site: SiteID) -> list[Seller]: ...

    async def put_buyer(self, buyer: Buyer) -> Buyer: ...

    async def get_buyer(self, site: SiteID, buyer_id: BuyerID) -> Buyer | None: ...


class ConversationRecords(Protocol):
    """Conversations: opened once per seller, buyer and context; found by id or by room."""

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

    async def list_conversations(
        self,
        site: SiteID,
        *,
        seller_id: SellerID | None = None,
        buyer_id: BuyerID | None = None,
        state: ConversationState | None = None,
        label: str | None = None,
        assignee: UserID | None = None,
    ) -> list[Conversation]: ...

    async def set_room(self, conversation_id: ConversationID, room_id: RoomID) -> None: ...

    async def set_context(self, conversation_id: ConversationID, context: Context) -> None: ...

    async def set_translation_enabled(
        self, conversation_id: ConversationID, enabled: bool
    ) -> None: ...


class RoomUpkeep(Protocol):
    """What the courier must still do for conversations' rooms after a restart or a change."""

    async def conversations_needing_delivery(self) -> list[Conversation]:
        """Conversations with no room yet, with buyer messages still pending, or with an
        automatic message whose notice is not in the room yet."""

    async def mark_members_stale(
        self, conversation_ids: Sequence[ConversationID], stale: bool
    ) -> None:
        """Note (or clear) that the rooms' members and power levels must follow a change."""

    async def conversations_with_stale_members(self) -> list[ConversationID]: ...


class Blocks(Protocol):
    """Who has blocked whom, per seller and buyer pair."""

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


class ConversationStates(Protocol):
    """Open and archived: the archive clock's view of conversations."""

    async def idle_conversations(self, quiet_since: datetime) -> list[ConversationID]: ...

    async def set_state(
        self,
        conversation_ids: Sequence[ConversationID],
        state: ConversationState,
        events_for: Callable[[Conversation], Sequence[Event]],
        *,
        only_from: ConversationState,
    ) -> list[Conversation]: ...


class MessageRecords(Protocol):
    """Messages as both sides and the marketplace read them."""

    async def add_message(
        self,
        message: Message,
        events: Sequence[Event],
        *,
        wait: WaitOpening | None = None,
        notices: Sequence[Message] = (),
    ) -> tuple[Message, bool]:
        """Store a message unless its client id or event id is stored; return the stored one.
        A new buyer message in a conversation that is blocked by then raises
        ConversationBlocked, decided in the same transaction as the insert. With `wait`, a
        new buyer message opens a wait for an answer, in the same transaction, when none is
        open (core/response_time.py). `notices` are system messages stored after it, in the
        same transaction (the contact policy's)."""

    async def get_message(self, message_id: MessageID) -> Message | None: ...

    async def message_by_client_id(
        self, conversation_id: ConversationID, client_id: str
    ) -> Message | None: ...

    async def message_by_event(self, event_id: EventID) -> Message | None: ...

    async def list_messages(
        self, conversation_id: ConversationID, *, after: MessageID | None, limit: int
    ) -> list[Message]: ...

    async def list_messages_before(
        self, conversation_id: ConversationID, *, before: MessageID | None, limit: int
    ) -> list[Message]:
        """The `limit` messages just before `before` (or the latest), oldest first."""

    async def last_messages(
        self, conversation_ids: Sequence[ConversationID]
    ) -> dict[ConversationID, Message]: ...

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

    async def delete_message(
        self, message_id: MessageID, deleted_at: datetime, events: EventsFor
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


class MessageDelivery(Protocol):
    """A buyer message's way into its room: rendered, given its files, delivered or failed."""

    async def pending_messages(self, conversation_id: ConversationID) -> list[Message]:
        """Buyer messages not yet in the room, oldest first."""

    async def set_rendering(
        self,
        message_id: MessageID,
        text: str,
        original: Original | None,
        note: TranslationNote | None,
        events: EventsFor,
    ) -> Message: ...

    async def set_attachments(
        self, message_id: MessageID, attachments: Sequence[Attachment]
    ) -> Message: ...

    async def mark_delivered(
        self, message_id: MessageID, event_id: EventID, events: EventsFor
    ) -> Message: ...

    async def requeue(self, message_id: MessageID, events: EventsFor) -> Message:
        """A failed message becomes pending again, for another try; its error is cleared."""

    async def mark_failed(self, message_id: MessageID, error: str, events: EventsFor) -> Message:
        """The message can't reach the room; `error` says why, for the buyer and marketplace."""


class FeedWriter(Protocol):
    """The buyer's feed: frames stored with the change they tell of."""

    async def add_frames(self, frames: Sequence[Event]) -> None: ...


class FeedReader(Protocol):
    """The buyer's feed, as the streams read it."""

    async def frames_since(
        self, site: SiteID, buyer_id: BuyerID, since: int, limit: int
    ) -> list[StoredFrame]: ...

    async def latest_frame(self, site: SiteID, buyer_id: BuyerID) -> int: ...


class TransactionLog(Protocol):
    """Appservice transactions: stored before the homeserver hears 200, applied once."""

    async def store_transaction(self, txn_id: str, events: list[dict[str, Any]]) -> bool: ...

    async def unprocessed_transactions(self) -> list[StoredTransaction]: ...

    async def mark_transaction_processed(self, txn_id: str) -> None: ...

    async def prune_transactions(self, processed_before: datetime) -> int:
        """Forget the transactions applied before `processed_before`; returns how many."""

    async def event_ids_received_since(self, at: datetime) -> set[str]:
        """The ids of the events of every transaction stored since `at`."""

    async def homeserver_last_up(self) -> datetime | None:
        """When the homeserver was last seen up, as kept (None before the first time)."""

    async def keep_homeserver_up(self, at: datetime) -> None: ...

    async def bridge_rooms(self) -> list[RoomID]:
        """Every room the bridge keeps: conversations', management and site rooms."""


class WebhookOutbox(Protocol):
    """Webhooks waiting for their marketplace, per site, oldest first."""

    async def due_webhooks(
        self, site: SiteID, now: datetime, limit: int
    ) -> list[OutgoingWebhook]: ...

    async def next_webhook_attempt(self, site: SiteID) -> datetime | None:
        """When the oldest undelivered webhook of the site is due, or None when none waits."""

    async def mark_webhook_delivered(self, delivery_id: str, at: datetime) -> None: ...

    async def defer_webhook(
        self, delivery_id: str, next_attempt_at: datetime, error: str
    ) -> None: ...


class RoomDirectory(Protocol):
    """Which of the bridge's rooms a room is."""

    async def classify_room(self, room_id: RoomID) -> RoomKind | None:
        """A conversation's room (with the conversation), a seller's management room or a
        site's room; None for any other room."""


class TranslationCache(Protocol):
    """Translations already made, by provider, languages and text."""

    async def cached_translation(
        self, provider: str, source: str, target: str, text: str
    ) -> str | None: ...

    async def keep_translation(
        self, provider: str, source: str, target: str, text: str, translated: str
    ) -> None:
        """Remember a translation; keeping the same one twice is harmless."""


class Repository(
    Parties,
    ConversationRecords,
    ConversationTags,
    RoomUpkeep,
    Blocks,
    ConversationStates,
    MessageRecords,
    MessageDelivery,
    FeedWriter,
    FeedReader,
    TransactionLog,
    WebhookOutbox,
    MailOutbox,
    BuyerDigests,
    RoomDirectory,
    TranslationCache,
    TemplateRecords,
    FeedbackRecords,
    AutomaticReplies,
    ReplyTokens,
    Unsubscribes,
    WaitRecords,
    ResponseWaits,
    Protocol,
):
    """Every port of the store at once: what `store/` implements."""
