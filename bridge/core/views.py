"""The published JSON shapes of domain records, shared by the API, webhooks and the widget."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bridge.core.models import Attachment, Buyer, Conversation, Feedback, Message, Seller


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def message_json(message: Message) -> dict[str, Any]:
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


def attachment_json(attachment: Attachment) -> dict[str, Any]:
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


def blocked_by_json(conversation: Conversation) -> list[str]:
    """Who blocks: `[]`, `["buyer"]`, `["seller"]` or `["buyer", "seller"]`, always sorted."""
    return sorted(side.value for side in conversation.blocked_by)


def conversation_json(conversation: Conversation) -> dict[str, Any]:
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
) -> dict[str, Any]:
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


def seller_json(seller: Seller) -> dict[str, Any]:
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


def feedback_json(feedback: Feedback) -> dict[str, Any]:
    return {
        "feedback_id": feedback.feedback_id,
        "seller_id": feedback.seller_id,
        "buyer_id": feedback.buyer_id,
        "text": feedback.text,
        "contact": feedback.contact,
        "created_at": timestamp(feedback.created_at),
    }


def buyer_json(buyer: Buyer) -> dict[str, Any]:
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
