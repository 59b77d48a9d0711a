"""The store's ports for what grew around the conversations: the seller's desk (templates,
feedback, labels and assignees, automatic replies), response times (waits, reminders, the
figures over them) and e-mail (the outbox, digests, reply tokens, unsubscribes).

`core/storage.py` holds the conversations' own seams and `Repository`, which joins both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from bridge.core.events import Event, EventsFor
from bridge.core.ids import (
    BuyerID,
    ConversationID,
    EventID,
    MessageID,
    SellerID,
    SiteID,
    UserID,
)
from bridge.core.models import (
    Attachment,
    Conversation,
    Feedback,
    Message,
    Template,
)

if TYPE_CHECKING:
    from bridge.core.figures import Wait


# How long a run that claimed a reminder has to send it before another run takes it again;
# well inside the time the homeserver remembers a transaction id, so a repeat is dropped.
REMINDER_LEASE = timedelta(minutes=5)


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
