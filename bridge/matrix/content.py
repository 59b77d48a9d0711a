"""What a conversation's room says, as Matrix content: the buyer's messages, the room's name
and topic, and the state that ties it to its conversation. Pure: no I/O."""

from __future__ import annotations

import html
import re
from typing import Any

from bridge.core.ids import UserID
from bridge.core.models import (
    Attachment,
    AttachmentKind,
    Buyer,
    Context,
    ContextType,
    Conversation,
    Message,
)
from bridge.core.profile import shared_profile

CONVERSATION_STATE = "io.bazaar.conversation"
CONTEXT_STATE = "io.bazaar.context"
BUYER_STATE = "io.bazaar.buyer"
CARD_KEY = "io.bazaar.card"
BRIDGE_STATE_TYPES = ("m.bridge", "uk.half-shot.bridge")
MESSAGE_ID_KEY = "io.bazaar.message_id"
# The context pane: an Element room widget (docs/context-pane.md), pinned to the right.
WIDGETS_STATE = "im.vector.modular.widgets"
WIDGET_LAYOUT_STATE = "io.element.widgets.layout"
PANE_WIDGET_ID = "bazaar_pane"
PANE_PATH = "/matrix-widget/v1/"


def buyer_message_content(message: Message) -> dict[str, Any]:
    """A buyer's message as a Matrix event: text, or a file with the text as its caption;
    a translation shows the original behind a spoiler and keeps it in the content."""
    content: dict[str, Any] = {"msgtype": "m.text", "body": message.text}
    if message.attachments:
        # One file per buyer message; the widget sends one at a time.
        content = file_content(message.attachments[0], caption=message.text)
    content[MESSAGE_ID_KEY] = message.message_id
    note = message.translation
    if note is not None:
        content["io.bazaar.translation"] = {
            "from": note.source,
            "to": note.target,
            "provider": note.provider,
            **({"failed": True} if note.failed else {}),
        }
    if message.original is not None:
        content["io.bazaar.original"] = {
            "body": message.original.text,
            "lang": message.original.lang,
        }
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = (
            f"{_html_lines(message.text)}<br><span data-mx-spoiler>"
            f"{_html_lines(message.original.text)}</span>"
        )
    elif note is not None and note.failed and message.text:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = (
            f"{_html_lines(message.text)}<br><em>(not translated: the translation service "
            "did not answer)</em>"
        )
    return content


def file_content(attachment: Attachment, caption: str) -> dict[str, Any]:
    """An `m.image` or `m.file` message for an uploaded attachment."""
    info: dict[str, Any] = {"mimetype": attachment.content_type, "size": attachment.size}
    if attachment.width is not None and attachment.height is not None:
        info["w"], info["h"] = attachment.width, attachment.height
    thumbnail = attachment.thumbnail
    if thumbnail is not None and thumbnail.mxc is not None:
        info["thumbnail_url"] = thumbnail.mxc
        info["thumbnail_info"] = {
            "mimetype": thumbnail.content_type,
            "size": thumbnail.size,
            "w": thumbnail.width,
            "h": thumbnail.height,
        }
    return {
        "msgtype": "m.image" if attachment.kind == AttachmentKind.IMAGE else "m.file",
        # With a caption, `body` is the caption and `filename` the file's name (Matrix 1.10).
        "body": caption or attachment.name,
        "filename": attachment.name,
        "url": attachment.mxc,
        "info": info,
    }


def _html_lines(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def room_name(buyer: Buyer, conversation: Conversation) -> str:
    return f"{buyer.name} · {conversation.context.title}"[:255]


# Words that already say what a conversation is about, besides the kind's English name:
# "Заказ №1001" needs no "Order: " before it. Whole words, in a few languages shops write
# in; an inflected form ("заказа") is not caught, and then the kind stays in front.
_KIND_WORDS = {
    ContextType.ORDER: frozenset(
        {"заказ", "замовлення", "zamówienie", "bestellung", "commande", "pedido", "ordine"}
    ),
}


def _titled_by_kind(context: Context) -> bool:
    kind = context.type
    words = set(re.findall(r"\w+", context.title.casefold()))
    return kind.value in words or not words.isdisjoint(_KIND_WORDS.get(kind, ()))


def room_topic(conversation: Conversation, order_status: str | None = None) -> str:
    """The room's topic; `order_status` is the status of the order the conversation is
    about (`core/orders.py`), shown in place of the context's own."""
    context = conversation.context
    title = context.title
    parts = [title if _titled_by_kind(context) else f"{context.type.value.capitalize()}: {title}"]
    if context.price:
        parts.append(f"{context.price} {context.currency or ''}".strip())
    if order_status or context.status:
        parts.append(order_status or context.status or "")
    if context.url:
        parts.append(context.url)
    if context.from_buyer:
        parts.append("as the buyer's page gave it")
    return " · ".join(parts)


def conversation_state(conversation: Conversation) -> dict[str, Any]:
    """The content of the room's `io.bazaar.conversation` state: whose it is, its state, the
    seller's labels and the member who answers it."""
    return {
        "site": conversation.site,
        "conversation_id": conversation.conversation_id,
        "seller_id": conversation.seller_id,
        "buyer_id": conversation.buyer_id,
        "state": conversation.state.value,
        "labels": list(conversation.labels),
        "assignee": conversation.assignee,
    }


def buyer_state(buyer: Buyer, share_contact: bool) -> dict[str, Any]:
    """The content of the room's `io.bazaar.buyer` state: what the site shares of the buyer
    (e-mail and phone only with `share_buyer_contact`)."""
    return shared_profile(buyer, share_contact)


def buyer_card_content(card: str) -> dict[str, Any]:
    """The bot's notice of the buyer's profile on first contact: plain text (nothing of the
    marketplace's goes into HTML), marked so a client or test can tell it from the others."""
    return {"msgtype": "m.notice", "body": card, CARD_KEY: "buyer"}


def bridge_info(
    conversation: Conversation, site_name: str, name: str, *, bot: UserID, bridge_id: str
) -> dict[str, Any]:
    """The content of the room's `m.bridge` state (MSC2346), which clients show as its origin."""
    channel: dict[str, Any] = {"id": conversation.conversation_id, "displayname": name}
    if conversation.context.url:
        channel["external_url"] = conversation.context.url
    return {
        "bridgebot": bot,
        "creator": bot,
        "protocol": {"id": bridge_id, "displayname": "Bazaar"},
        "network": {"id": conversation.site, "displayname": site_name},
        "channel": channel,
    }


def pane_widget_state(public_url: str, bot: UserID) -> list[dict[str, Any]]:
    """The context pane as room state: the widget (Element fills `$matrix_room_id` and
    `$matrix_user_id`, then adds `widgetId` and `parentUrl`) and the layout that pins it to
    the right panel."""
    url = f"{public_url.rstrip('/')}{PANE_PATH}?room_id=$matrix_room_id&user_id=$matrix_user_id"
    widget = {
        "type": "m.custom",
        "url": url,
        "name": "Conversation",
        "data": {},
        # Element starts the widget API handshake when the page has loaded.
        "waitForIframeLoad": True,
        "creatorUserId": bot,
        "id": PANE_WIDGET_ID,
    }
    layout = {"widgets": {PANE_WIDGET_ID: {"container": "right"}}}
    return [
        {"type": WIDGETS_STATE, "state_key": PANE_WIDGET_ID, "content": widget},
        {"type": WIDGET_LAYOUT_STATE, "state_key": "", "content": layout},
    ]


def conversation_room_state(
    conversation: Conversation,
    site_name: str,
    name: str,
    *,
    bot: UserID,
    bridge_id: str,
    parent: dict[str, Any],
    avatar: str | None,
    buyer: dict[str, Any] | None = None,
    pane: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The initial state of a new conversation room, all of it in its `createRoom`; `pane`
    is the context pane's widget state (`pane_widget_state`)."""
    state_key = f"io.bazaar://{conversation.site}/{conversation.conversation_id}"
    info = bridge_info(conversation, site_name, name, bot=bot, bridge_id=bridge_id)
    initial_state: list[dict[str, Any]] = [
        {
            "type": CONVERSATION_STATE,
            "state_key": "",
            "content": conversation_state(conversation),
        },
        {"type": CONTEXT_STATE, "state_key": "", "content": conversation.context.to_json()},
        *({"type": kind, "state_key": state_key, "content": info} for kind in BRIDGE_STATE_TYPES),
        {
            "type": "m.room.guest_access",
            "state_key": "",
            "content": {"guest_access": "forbidden"},
        },
        parent,
    ]
    if buyer is not None:
        initial_state.append({"type": BUYER_STATE, "state_key": "", "content": buyer})
    if avatar is not None:
        initial_state.append({"type": "m.room.avatar", "state_key": "", "content": {"url": avatar}})
    initial_state.extend(pane or ())
    return initial_state
