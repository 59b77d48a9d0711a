"""Tables of the bridge. Changes here need a migration in `migrations/versions/`.

Every table is in this one module (about 480 lines), as Alembic and the migrations-match
test see them: a table's keys and its neighbours' foreign keys read together."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Always timezone-aware UTC in Python, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for room to grow.
SerialKey = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class SellerRow(Base):
    __tablename__ = "sellers"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    seller_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(320))
    chat_enabled: Mapped[bool] = mapped_column(Boolean)
    greeting: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # {"mon": [["09:00", "18:00"]], ...}; NULL: always open.
    hours: Mapped[dict[str, Any] | None]
    away_message: Mapped[str | None] = mapped_column(Text)
    email_copies: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    updated_at: Mapped[datetime]


class SellerMemberRow(Base):
    __tablename__ = "seller_members"
    __table_args__ = (
        ForeignKeyConstraint(
            ["site", "seller_id"], ["sellers.site", "sellers.seller_id"], ondelete="CASCADE"
        ),
    )

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    seller_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    role: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer)


class BuyerRow(Base):
    __tablename__ = "buyers"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    avatar_url: Mapped[str | None] = mapped_column(String(2048))
    profile_url: Mapped[str | None] = mapped_column(String(2048))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime]
    # The last `seq` handed out in this buyer's feed; bumping it locks the row, so one
    # buyer's frames commit in `seq` order and a reader never skips one.
    feed_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class ConversationRow(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint(
            "site",
            "seller_id",
            "buyer_id",
            "context_type",
            "context_id",
            name="uq_conversation_context",
        ),
        Index("ix_conversations_seller", "site", "seller_id"),
        Index("ix_conversations_buyer", "site", "buyer_id"),
    )

    conversation_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    seller_id: Mapped[str] = mapped_column(String(200))
    buyer_id: Mapped[str] = mapped_column(String(200))
    context_type: Mapped[str] = mapped_column(String(16))
    context_id: Mapped[str] = mapped_column(String(200))
    context: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    room_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    translation_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    # Set while the room's members and power levels still have to follow a change (a role,
    # a block, a state), so a restart picks the work up.
    members_stale: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime]
    last_message_at: Mapped[datetime | None]
    buyer_read_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    seller_read_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # The seller's labels for it, sorted (a JSON list of strings).
    labels: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    assignee: Mapped[str | None] = mapped_column(String(255))
    # Automatic messages: the greeting is sent once; the away reply once per seller's day.
    greeted: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    away_sent_on: Mapped[str | None] = mapped_column(String(10))
    # The seq of the last seller message mailed to the buyer (their digest of unread replies).
    buyer_mailed_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # When the open wait for a member's answer began; NULL when none is open. Setting it
    # with "WHERE waiting_since IS NULL" is what opens a wait, once.
    waiting_since: Mapped[datetime | None]


class MessageRow(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "client_id", name="uq_message_client_id"),
        Index("ix_messages_conversation_seq", "conversation_id", "seq"),
        Index("ix_messages_pending", "status", "conversation_id"),
    )

    seq: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.conversation_id", ondelete="CASCADE")
    )
    sender: Mapped[str] = mapped_column(String(16))
    sender_name: Mapped[str] = mapped_column(String(255))
    sender_user_id: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(16))
    original_text: Mapped[str | None] = mapped_column(Text)
    original_lang: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    # Why a failed message could not reach the room.
    error: Mapped[str | None] = mapped_column(Text)
    client_id: Mapped[str | None] = mapped_column(String(100))
    event_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    attachments: Mapped[list[Any]]
    translation: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    edited_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    automatic: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class WebhookRow(Base):
    __tablename__ = "webhook_outbox"
    __table_args__ = (Index("ix_webhook_outbox_due", "site", "delivered_at", "seq"),)

    seq: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(40), unique=True)
    site: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class BlockRow(Base):
    """One side of a seller–buyer pair has blocked the other; all their rooms follow."""

    __tablename__ = "blocks"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    seller_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    blocked_by: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_at: Mapped[datetime]


class SellerSpaceRow(Base):
    """The Matrix Space the bot keeps for a seller: sections by state, a management room."""

    __tablename__ = "seller_spaces"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    seller_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    space_id: Mapped[str] = mapped_column(String(255))
    active_id: Mapped[str] = mapped_column(String(255))
    archived_id: Mapped[str] = mapped_column(String(255))
    blocked_id: Mapped[str] = mapped_column(String(255))
    management_id: Mapped[str] = mapped_column(String(255), unique=True)
    # The room the seller's members share with the site's admins.
    marketplace_id: Mapped[str | None] = mapped_column(String(255))
    # The section holding exactly the rooms with an open wait; made when first needed.
    unanswered_id: Mapped[str | None] = mapped_column(String(255))


class SiteRoomRow(Base):
    """Rooms the bot keeps for a whole site, such as the admins' control room."""

    __tablename__ = "site_rooms"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255), unique=True)


class FeedRow(Base):
    """A frame of a buyer's real-time stream, kept so a reconnecting client misses nothing."""

    __tablename__ = "buyer_feed"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class TransactionRow(Base):
    __tablename__ = "appservice_transactions"
    __table_args__ = (Index("ix_appservice_transactions_received_at", "received_at"),)

    txn_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    events: Mapped[list[Any]]
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]


class CatchupMarkRow(Base):
    """A moment the catch-up keeps (`matrix/catchup.py`): when the homeserver was last seen
    up, which the next start reads the rooms back to."""

    __tablename__ = "catchup_marks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime]


class GhostRow(Base):
    __tablename__ = "ghosts"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(255))


class SpacePlacementRow(Base):
    """The section of its seller's Space a conversation room was last put in."""

    __tablename__ = "space_placements"

    room_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    section: Mapped[str] = mapped_column(String(16))


class TranslationRow(Base):
    """A provider's translation of one text into one language, kept so that a repeated
    text (a template, a greeting) costs one call."""

    __tablename__ = "translations"
    __table_args__ = (
        UniqueConstraint(
            "provider", "source_lang", "target_lang", "text_sha256", name="uq_translation"
        ),
    )

    seq: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    source_lang: Mapped[str] = mapped_column(String(16))
    target_lang: Mapped[str] = mapped_column(String(16))
    text_sha256: Mapped[str] = mapped_column(String(64))
    translated: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class TemplateRow(Base):
    """A seller's canned reply."""

    __tablename__ = "seller_templates"
    __table_args__ = (
        ForeignKeyConstraint(
            ["site", "seller_id"], ["sellers.site", "sellers.seller_id"], ondelete="CASCADE"
        ),
    )

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    seller_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    position: Mapped[float] = mapped_column(Double)
    visible: Mapped[bool] = mapped_column(Boolean)
    # The file that goes with it, as the messages table keeps attachments; NULL: none.
    attachment: Mapped[dict[str, Any] | None]
    updated_at: Mapped[datetime]


class FeedbackRow(Base):
    """A feedback form sent while the seller's chat was off."""

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_seller", "site", "seller_id", "created_at"),)

    feedback_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    seller_id: Mapped[str] = mapped_column(String(200))
    buyer_id: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime]


class LabelSectionRow(Base):
    """A section of a seller's Space for one label, beside the sections by state."""

    __tablename__ = "label_sections"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    seller_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    label: Mapped[str] = mapped_column(String(32), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(255), unique=True)


class LabelPlacementRow(Base):
    """A conversation room is a child of the section of this label."""

    __tablename__ = "label_placements"

    room_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    label: Mapped[str] = mapped_column(String(32), primary_key=True)


class MailRow(Base):
    """A mail in the outbox, stored whole (RFC 5322) with what caused it; sent once."""

    __tablename__ = "mail_outbox"
    __table_args__ = (
        Index("ix_mail_outbox_due", "sent_at", "failed_at", "next_attempt_at"),
        # The unsent in the order queued, read a batch at a time without sorting the backlog.
        Index("ix_mail_outbox_queue", "sent_at", "failed_at", "seq"),
    )

    seq: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    mail_id: Mapped[str] = mapped_column(String(40), unique=True)
    site: Mapped[str] = mapped_column(String(64))
    # What it is: conversation.created, message.copy, feedback, buyer.digest, …
    kind: Mapped[str] = mapped_column(String(32))
    sender: Mapped[str] = mapped_column(String(320))
    recipient: Mapped[str] = mapped_column(String(320))
    message: Mapped[str] = mapped_column(Text)
    # The same key is queued once (a digest per conversation and last message, …).
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # Refused for good (a recipient the relay rejects): kept, logged, not retried.
    failed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class MailTokenRow(Base):
    """The unguessable part of `reply+{token}@{domain}`: one per buyer and conversation."""

    __tablename__ = "mail_reply_tokens"
    __table_args__ = (
        UniqueConstraint("site", "buyer_id", "conversation_id", name="uq_mail_reply_token"),
    )

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    buyer_id: Mapped[str] = mapped_column(String(200))
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.conversation_id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime]


class UnsubscribeRow(Base):
    """A buyer who asked for no more mail (RFC 8058 one-click), respected at once."""

    __tablename__ = "mail_unsubscribes"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime]


class WaitRow(Base):
    """A buyer waiting for a member's answer: opened by a buyer message when none is open,
    closed by a member's reply (or `!noreply`, which leaves it out of the figures)."""

    __tablename__ = "response_waits"
    __table_args__ = (
        Index("ix_response_waits_seller", "site", "seller_id", "opened_at"),
        Index("ix_response_waits_open", "conversation_id", "closed_at"),
    )

    wait_id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.conversation_id", ondelete="CASCADE")
    )
    site: Mapped[str] = mapped_column(String(64))
    seller_id: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[datetime]
    opened_by: Mapped[str] = mapped_column(String(40))
    closed_at: Mapped[datetime | None]
    # replied | noreply; NULL while open.
    outcome: Mapped[str | None] = mapped_column(String(16))
    closed_by: Mapped[str | None] = mapped_column(String(255))
    # The wait's length in wall-clock time and within the seller's working hours.
    wall_seconds: Mapped[float | None] = mapped_column(Double)
    working_seconds: Mapped[float | None] = mapped_column(Double)
    # Whether it was the conversation's first wait (first response vs later replies).
    first: Mapped[bool] = mapped_column(Boolean, default=False)


class ReminderRow(Base):
    """A reminder of an open wait, stored when the wait opens: at half the target and an
    hour before it. A restart neither loses nor repeats one."""

    __tablename__ = "response_reminders"
    __table_args__ = (Index("ix_response_reminders_due", "done_at", "due_at"),)

    wait_id: Mapped[int] = mapped_column(
        ForeignKey("response_waits.wait_id", ondelete="CASCADE"), primary_key=True
    )
    # half | last_hour
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    due_at: Mapped[datetime]
    # Taken by a run that is sending it; a claim older than the lease (a run that died
    # mid-send) is taken again, and the notice's key makes the homeserver drop a repeat.
    claimed_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]


class OrderRow(Base):
    """An order the marketplace attached to a conversation (`core/orders.py`)."""

    __tablename__ = "orders"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.conversation_id", ondelete="CASCADE"), primary_key=True
    )
    order_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    total: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    url: Mapped[str | None] = mapped_column(String(2000))
    items: Mapped[list[Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The `updated_at` the room's `io.bazaar.order` state shows; NULL or older: owed.
    room_synced_at: Mapped[datetime | None]


class OfferRow(Base):
    """An offer a member made in a conversation room (`core/offers.py`)."""

    __tablename__ = "offers"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.conversation_id", ondelete="CASCADE"), primary_key=True
    )
    offer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[int]
    price: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    product_id: Mapped[str | None] = mapped_column(String(200))
    image_url: Mapped[str | None] = mapped_column(String(2000))
    checkout_url: Mapped[str | None] = mapped_column(String(2000))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The status the room was last told (its notice and `io.bazaar.offer` state); NULL or
    # another status: owed.
    room_status: Mapped[str | None] = mapped_column(String(16))


class ErasureRow(Base):
    """A buyer's erasure (`core/erasure.py`): the database part is done when the row is
    written; what Matrix still owes (redactions, the rooms' profile) is listed here until
    a worker has done it, so a restart finishes it."""

    __tablename__ = "buyer_erasures"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    requested_at: Mapped[datetime]
    # [[room_id, event_id], ...]: the buyer's events the bot still has to redact.
    redactions: Mapped[list[Any]]
    # The conversations whose rooms still show the buyer's name and profile.
    conversations: Mapped[list[Any]]
    # The sha256 of the buyer's files, deleted from the media store unless still in use.
    files: Mapped[list[Any]]
    finished_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class RoomStateRow(Base):
    """A bridge room's state as its transactions showed it: only what a members' sync reads
    (`matrix/room_state.py`), so that a role change over many rooms reads none of them back.
    A membership keeps only its `membership`: no display names, no one's words."""

    __tablename__ = "room_state"

    room_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(255), primary_key=True)
    state_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    content: Mapped[dict[str, Any]]


# The tables under the rows, for the Core statements built once that every message runs
# (no ORM objects on that path).
MESSAGES = Base.metadata.tables[MessageRow.__tablename__]
CONVERSATIONS = Base.metadata.tables[ConversationRow.__tablename__]
BUYERS = Base.metadata.tables[BuyerRow.__tablename__]
