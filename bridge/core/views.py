"""The published JSON shapes of domain records, shared by the API, webhooks and the widget.

Each `…_json` returns a TypedDict that says its shape exactly: mypy holds the functions to
it, and the OpenAPI document describes the answers from it (`bridge/openapi.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, overload

from typing_extensions import TypedDict

from bridge.core.hours import WeeklyHoursView
from bridge.core.ids import BuyerID, ConversationID, MessageID, RoomID, SellerID, SiteID, UserID
from bridge.core.models import (
    Attachment,
    AttachmentKindValue,
    Buyer,
    ContextView,
    Conversation,
    ConversationStateValue,
    Feedback,
    Message,
    MessageStatusValue,
    Seller,
    SenderValue,
    SideValue,
)


class OriginalView(TypedDict):
    """A translated message's text as its sender wrote it."""

    text: str
    lang: str


class TranslationView(TypedDict):
    """How a message's text came to be in the reader's language."""

    source: str
    target: str
    provider: str
    failed: bool


class AttachmentView(TypedDict):
    """What a reader learns of an attachment; its bytes come from the attachments endpoint."""

    attachment_id: str
    kind: AttachmentKindValue
    name: str
    content_type: str
    size: int
    width: int | None
    height: int | None
    thumbnail: bool


class MessageView(TypedDict):
    """A message of a conversation, from the buyer, the seller or the bridge."""

    message_id: MessageID
    conversation_id: ConversationID
    sender: SenderValue
    sender_name: str
    text: str
    lang: str | None
    original: OriginalView | None
    attachments: list[AttachmentView]
    translation: TranslationView | None
    status: MessageStatusValue
    error: str | None
    client_id: str | None
    html: str | None
    deleted: bool
    automatic: bool
    created_at: str
    edited_at: str | None


class UnreadCounts(TypedDict):
    """How many messages each side has not read yet."""

    buyer: int
    seller: int


class ConversationView(TypedDict):
    """A conversation between a seller and a buyer, as the marketplace sees it."""

    conversation_id: ConversationID
    site: SiteID
    seller_id: SellerID
    buyer_id: BuyerID
    context: ContextView
    state: ConversationStateValue
    blocked_by: list[SideValue]
    room_id: RoomID | None
    created_at: str
    last_message_at: str | None
    unread: UnreadCounts
    translation_enabled: bool
    labels: list[str]
    assignee: UserID | None


class BuyerConversationView(TypedDict):
    """A conversation as its buyer sees it: one unread count, the seller's name."""

    conversation_id: ConversationID
    seller_id: SellerID
    seller_name: str | None
    context: ContextView
    state: ConversationStateValue
    blocked_by: list[SideValue]
    unread: int
    last_message: MessageView | None
    last_message_at: str | None
    created_at: str


class MemberView(TypedDict):
    """A person who answers for a seller, by their Matrix id."""

    user_id: UserID
    role: str


class SellerView(TypedDict):
    """A seller: its language, chat settings, working hours and members."""

    seller_id: SellerID
    name: str
    language: str
    email: str | None
    chat_enabled: bool
    greeting: str | None
    timezone: str
    hours: WeeklyHoursView | None
    away_message: str | None
    email_copies: bool
    members: list[MemberView]


class FeedbackView(TypedDict):
    """A feedback form a buyer left while the seller's chat was off."""

    feedback_id: str
    seller_id: SellerID
    buyer_id: BuyerID | None
    text: str
    contact: str | None
    created_at: str


class BuyerView(TypedDict):
    """A buyer's profile as the marketplace gave it."""

    buyer_id: BuyerID
    name: str
    language: str | None
    email: str | None
    phone: str | None
    avatar_url: str | None
    profile_url: str | None
    summary: dict[str, Any] | None


# The lists and small answers the APIs wrap around the views.


class ConversationList(TypedDict):
    """A site's conversations, newest first."""

    conversations: list[ConversationView]


class MessageList(TypedDict):
    """A page of a conversation's messages, oldest first."""

    messages: list[MessageView]


class BuyerConversationList(TypedDict):
    """The buyer's conversations, with what the widget needs beside them."""

    conversations: list[BuyerConversationView]
    unread_total: int
    # The widget checks a file's size before sending it all the way.
    max_upload_bytes: int


class BuyerToken(TypedDict):
    """A token the buyer's widget signs in with, and when it expires (Unix time)."""

    token: str
    expires_at: int


class ErasedBuyer(TypedDict):
    """The buyer is erased: the database holds nothing of them any more."""

    buyer_id: BuyerID
    erased: Literal[True]


@overload
def timestamp(value: datetime) -> str: ...


@overload
def timestamp(value: None) -> None: ...


@overload
def timestamp(value: datetime | None) -> str | None: ...


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def message_json(message: Message) -> MessageView:
    return {
        "message_id": message.message_id,
        "conversation_id": message.conversation_id,
        "sender": message.sender.value,
        "sender_name": message.sender_name,
        "text": message.text,
        "lang": message.lang,
        "original": (
            {"text": message.original.text, "lang": message.original.lang}
            if message.original
            else None
        ),
        "attachments": [attachment_json(a) for a in message.attachments],
        "translation": (
            {
                "source": message.translation.source,
                "target": message.translation.target,
                "provider": message.translation.provider,
                "failed": message.translation.failed,
            }
            if message.translation
            else None
        ),
        "status": message.status.value,
        "error": message.error,
        "client_id": message.client_id,
        "html": message.html,
        "deleted": message.deleted,
        "automatic": message.automatic,
        "created_at": timestamp(message.created_at),
        "edited_at": timestamp(message.edited_at),
    }


def attachment_json(attachment: Attachment) -> AttachmentView:
    """What a reader learns of an attachment; its bytes come from the attachments endpoint."""
    return {
        "attachment_id": attachment.attachment_id,
        "kind": attachment.kind.value,
        "name": attachment.name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "width": attachment.width,
        "height": attachment.height,
        "thumbnail": attachment.thumbnail is not None,
    }


def blocked_by_json(conversation: Conversation) -> list[SideValue]:
    """Who blocks: `[]`, `["buyer"]`, `["seller"]` or `["buyer", "seller"]`, always sorted."""
    return sorted(side.value for side in conversation.blocked_by)


def conversation_json(conversation: Conversation) -> ConversationView:
    return {
        "conversation_id": conversation.conversation_id,
        "site": conversation.site,
        "seller_id": conversation.seller_id,
        "buyer_id": conversation.buyer_id,
        "context": conversation.context.to_json(),
        "state": conversation.state.value,
        "blocked_by": blocked_by_json(conversation),
        "room_id": conversation.room_id,
        "created_at": timestamp(conversation.created_at),
        "last_message_at": timestamp(conversation.last_message_at),
        "unread": {"buyer": conversation.unread_buyer, "seller": conversation.unread_seller},
        "translation_enabled": conversation.translation_enabled,
        "labels": list(conversation.labels),
        "assignee": conversation.assignee,
    }


def buyer_conversation_json(
    conversation: Conversation,
    *,
    seller_name: str | None = None,
    last_message: Message | None = None,
) -> BuyerConversationView:
    """A conversation as its buyer sees it: one unread count, the seller's name."""
    return {
        "conversation_id": conversation.conversation_id,
        "seller_id": conversation.seller_id,
        "seller_name": seller_name,
        "context": conversation.context.to_json(),
        "state": conversation.state.value,
        "blocked_by": blocked_by_json(conversation),
        "unread": conversation.unread_buyer,
        "last_message": message_json(last_message) if last_message else None,
        "last_message_at": timestamp(conversation.last_message_at),
        "created_at": timestamp(conversation.created_at),
    }


def seller_json(seller: Seller) -> SellerView:
    return {
        "seller_id": seller.seller_id,
        "name": seller.name,
        "language": seller.language,
        "email": seller.email,
        "chat_enabled": seller.chat_enabled,
        "greeting": seller.greeting,
        "timezone": seller.timezone,
        "hours": seller.hours.to_json() if seller.hours is not None else None,
        "away_message": seller.away_message,
        "email_copies": seller.email_copies,
        "members": [{"user_id": m.user_id, "role": m.role} for m in seller.members],
    }


def feedback_json(feedback: Feedback) -> FeedbackView:
    return {
        "feedback_id": feedback.feedback_id,
        "seller_id": feedback.seller_id,
        "buyer_id": feedback.buyer_id,
        "text": feedback.text,
        "contact": feedback.contact,
        "created_at": timestamp(feedback.created_at),
    }


def buyer_json(buyer: Buyer) -> BuyerView:
    return {
        "buyer_id": buyer.buyer_id,
        "name": buyer.name,
        "language": buyer.language,
        "email": buyer.email,
        "phone": buyer.phone,
        "avatar_url": buyer.avatar_url,
        "profile_url": buyer.profile_url,
        "summary": buyer.summary,
    }
