"""The ports through which the domain reaches the store, one per seam of the store.

Each service takes only the ports it uses, bundled in a small protocol of its own; the
store's one `SqlRepository` implements them all (`Repository`). No row of the database
reaches the domain: the store hands back the records of `core/models.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

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
    Feedback,
    Message,
    Original,
    Seller,
    SenderKind,
    Side,
    Template,
    TranslationNote,
)
from bridge.core.room_events import RoomKind

if TYPE_CHECKING:
    from bridge.core.stats import Wait


class ConversationBlocked(Exception):
    """A buyer's message met a block that was stored first: it is not stored."""


# How long a run that claimed a reminder has to send it before another run takes it again;
# well inside the time the homeserver remembers a transaction id, so a repeat is dropped.
REMINDER_LEASE = timedelta(minutes=5)


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
        self, message: Message, events: Sequence[Event], *, wait: WaitOpening | None = None
    ) -> tuple[Message, bool]:
        """Store a message unless its client id or event id is stored; return the stored one.
        A new buyer message in a conversation that is blocked by then raises
        ConversationBlocked, decided in the same transaction as the insert. With `wait`, a
        new buyer message opens a wait for an answer, in the same transaction, when none is
        open (core/response_time.py)."""

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


@dataclass(frozen=True)
class OutgoingMail:
    mail_id: str
    sender: str
    recipient: str
    message: str
    attempts: int


class MailOutbox(Protocol):
    """Mail waiting for the relay, oldest first; each is sent once or fails for good."""

    async def due_mails(self, now: datetime, limit: int) -> list[OutgoingMail]: ...

    async def next_mail_attempt(self) -> datetime | None:
        """When the next unsent mail is due, or None when none waits."""

    async def mark_mails_sent(self, mail_ids: Sequence[str], at: datetime) -> None:
        """The relay took these mails: sent, in one write for a batch."""

    async def defer_mail(self, mail_id: str, next_attempt_at: datetime, error: str) -> None: ...

    async def fail_mail(self, mail_id: str, at: datetime, error: str) -> None:
        """The relay refused it for good (a 5xx): kept with the reason, never retried."""


@dataclass(frozen=True)
class UnreadReplies:
    """A conversation's seller messages the buyer has neither read nor been mailed, oldest
    first (at most the last few); `last_seq` is the newest of them."""

    conversation: Conversation
    messages: list[Message]
    last_seq: int


class BuyerDigests(Protocol):
    """The buyer's digest of unread replies, queued once per conversation and last message."""

    async def unread_replies(self, written_before: datetime, limit: int) -> list[UnreadReplies]:
        """Conversations (not blocked) with a seller message, not automatic, written before
        `written_before` that the buyer has neither read nor been mailed."""

    async def queue_digest(
        self, conversation_id: ConversationID, last_seq: int, events: Sequence[Event]
    ) -> bool:
        """Mark the replies up to `last_seq` mailed and store the events (the mail) in one
        transaction; False, storing nothing, when they were marked already."""


@dataclass(frozen=True)
class WaitOpening:
    """What a buyer message's wait gets when it opens one: its reminders, by kind, due."""

    reminders: tuple[tuple[str, datetime], ...] = ()


@dataclass(frozen=True)
class OpenWait:
    wait_id: int
    conversation_id: ConversationID
    opened_at: datetime


@dataclass(frozen=True)
class WaitClosing:
    """How a wait ends: by a member's reply (`replied`) or `!noreply` (`noreply`), with its
    lengths."""

    closed_at: datetime
    outcome: str
    closed_by: str
    wall_seconds: float
    working_seconds: float


@dataclass(frozen=True)
class DueReminder:
    wait_id: int
    kind: str
    due_at: datetime
    conversation: Conversation
    opened_at: datetime


class ResponseWaits(Protocol):
    """Buyers waiting for a member's answer, and the reminders of those waits (the waits
    open with the buyer message: `MessageRecords.add_message`)."""

    async def open_wait(self, conversation_id: ConversationID) -> OpenWait | None: ...

    async def close_wait(self, wait: OpenWait, closing: WaitClosing) -> bool:
        """Close the wait unless it is closed already, clear the conversation's
        `waiting_since` and drop the wait's pending reminders, in one transaction; False
        when it was closed already."""

    async def due_reminders(self, now: datetime, limit: int) -> list[DueReminder]:
        """Reminders due by `now`, of open waits, neither done nor claimed within the lease
        (`REMINDER_LEASE`), oldest first."""

    async def claim_reminders(self, keys: Sequence[tuple[int, str]], at: datetime) -> set[int]:
        """Claim these reminders (wait id, kind) for sending unless done or claimed within
        the lease; the wait ids of those this call claimed, so two runs never both send."""

    async def finish_reminders(self, keys: Sequence[tuple[int, str]], at: datetime) -> None:
        """The claimed reminders were sent (or are said to nobody): done for good."""

    async def release_reminders(self, keys: Sequence[tuple[int, str]]) -> None:
        """Undo a claim whose notices could not be sent, for the next run."""


class RoomDirectory(Protocol):
    """Which of the bridge's rooms a room is."""

    async def classify_room(self, room_id: RoomID) -> RoomKind | None:
        """A conversation's room (with the conversation), a seller's management room or a
        site's room; None for any other room."""


class ReplyTokens(Protocol):
    """The unguessable token of `reply+{token}@{domain}`, one per buyer and conversation; it
    also names the buyer in the one-click unsubscribe link."""

    async def reply_token(
        self, site: SiteID, buyer_id: BuyerID, conversation_id: ConversationID
    ) -> str:
        """The token of this buyer in this conversation, made on first use."""

    async def by_reply_token(self, token: str) -> tuple[SiteID, BuyerID, ConversationID] | None: ...


class Unsubscribes(Protocol):
    """Buyers who asked for no more mail (RFC 8058 one-click), respected at once."""

    async def unsubscribe(self, site: SiteID, buyer_id: BuyerID) -> None:
        """Record it; a repeat is harmless."""

    async def is_unsubscribed(self, site: SiteID, buyer_id: BuyerID) -> bool: ...


class TranslationCache(Protocol):
    """Translations already made, by provider, languages and text."""

    async def cached_translation(
        self, provider: str, source: str, target: str, text: str
    ) -> str | None: ...

    async def keep_translation(
        self, provider: str, source: str, target: str, text: str, translated: str
    ) -> None:
        """Remember a translation; keeping the same one twice is harmless."""


class TemplateRecords(Protocol):
    """A seller's canned replies, ordered by position, then name."""

    async def list_templates(self, site: SiteID, seller_id: SellerID) -> list[Template]: ...

    async def get_template(
        self, site: SiteID, seller_id: SellerID, name: str
    ) -> Template | None: ...

    async def put_template(self, template: Template) -> bool:
        """Store a template, replacing the one of the same name; True when it is new."""

    async def delete_template(self, site: SiteID, seller_id: SellerID, name: str) -> bool: ...

    async def set_template_file(
        self, site: SiteID, seller_id: SellerID, name: str, attachment: Attachment | None
    ) -> Template | None:
        """Give a template its file (None: take it away); None when there is no template."""


class FeedbackRecords(Protocol):
    """Feedback forms a buyer leaves while the seller's chat is off, and the switch itself."""

    async def add_feedback(self, feedback: Feedback, events: Sequence[Event]) -> Feedback:
        """Store the form with the events that tell of it, in one transaction."""

    async def list_feedback(self, site: SiteID, seller_id: SellerID) -> list[Feedback]: ...

    async def set_chat_enabled(self, site: SiteID, seller_id: SellerID, enabled: bool) -> bool:
        """Turn the seller's chat on or off, the rest of its record as it is; False when
        there is no such seller."""


class ConversationTags(Protocol):
    """The seller's marks on a conversation: its labels and the member who answers it.
    Each write stores the events `events_for` builds from the conversation as changed, and
    returns it; None when there is no such conversation."""

    async def set_labels(
        self,
        conversation_id: ConversationID,
        labels: Sequence[str],
        events_for: Callable[[Conversation], Sequence[Event]],
    ) -> Conversation | None: ...

    async def set_assignee(
        self,
        conversation_id: ConversationID,
        assignee: UserID | None,
        events_for: Callable[[Conversation], Sequence[Event]],
    ) -> Conversation | None: ...


@dataclass(frozen=True)
class AutoReplyMarks:
    """What decides a conversation's automatic messages: greeted already, the seller's day
    (ISO) of the last away reply, and when a member last replied."""

    greeted: bool = False
    away_sent_on: str | None = None
    last_member_reply_at: datetime | None = None


@dataclass(frozen=True)
class AutomaticClaim:
    """An automatic message and the mark that makes it happen once: the greeting claims
    `greeted`; an away reply claims the seller's day `away_day`, unless a member replied
    at or after `quiet_since`."""

    message: Message
    away_day: str | None = None
    quiet_since: datetime | None = None


class AutomaticReplies(Protocol):
    """The greeting and away replies: claimed once, and their notices owed to the room."""

    async def auto_reply_marks(self, conversation_id: ConversationID) -> AutoReplyMarks: ...

    async def add_automatic_messages(
        self, claims: Sequence[AutomaticClaim], events: EventsFor
    ) -> list[Message]:
        """Store, in order, the messages whose mark is still free, taking each mark with a
        conditional update in the same transaction (with their events); returns those
        stored. Two racing calls for one mark store one message between them."""

    async def notices_owed(self, conversation_id: ConversationID) -> list[Message]:
        """Automatic messages whose notice is not in the room yet, oldest first: only those
        behind which no buyer message is still pending."""

    async def mark_notice_posted(self, message_id: MessageID, event_id: EventID) -> None: ...


class WaitRecords(Protocol):
    """The waits the response-time figures are made of (`core/stats.py`), read back for a
    period: those opened at or after `since`, and those still open."""

    async def seller_waits_since(
        self, site: SiteID, seller_id: SellerID, since: datetime
    ) -> list[Wait]: ...

    async def site_waits_since(self, site: SiteID, since: datetime) -> list[Wait]:
        """The same for every seller of the site, in one query."""


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
