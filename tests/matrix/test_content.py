"""How a conversation reads in Matrix: the topic says the kind of context once, never
twice; a buyer's message carries its id, its original and its file."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bridge.core.ids import BuyerID, ConversationID, MessageID, SellerID, SiteID
from bridge.core.models import (
    Attachment,
    AttachmentKind,
    Context,
    ContextType,
    Conversation,
    ConversationState,
    Message,
    MessageStatus,
    Original,
    SenderKind,
    TranslationNote,
)
from bridge.matrix.content import MESSAGE_ID_KEY, buyer_message_content, room_topic


def conversation_about(kind: ContextType, title: str) -> Conversation:
    return Conversation(
        conversation_id=ConversationID("c1"),
        site=SiteID("shop"),
        seller_id=SellerID("acme"),
        buyer_id=BuyerID("anna"),
        context=Context(kind, "x-1", title),
        state=ConversationState.ACTIVE,
        room_id=None,
        created_at=datetime.now(UTC),
    )


@pytest.mark.parametrize(
    ("kind", "title", "topic"),
    [
        (ContextType.ORDER, "Order A-1001", "Order A-1001"),
        (ContextType.ORDER, "your ORDER #1001", "your ORDER #1001"),
        (ContextType.ORDER, "Заказ №1001", "Заказ №1001"),
        (ContextType.ORDER, "Zamówienie 77", "Zamówienie 77"),
        (ContextType.ORDER, "Kettle, 2 pcs", "Order: Kettle, 2 pcs"),
        # A word that merely contains the kind doesn't count.
        (ContextType.ORDER, "Border collie bed", "Order: Border collie bed"),
        (ContextType.PRODUCT, "Product 42", "Product 42"),
        (ContextType.PRODUCT, "Electric kettle", "Product: Electric kettle"),
        # Another kind's word is no reason to drop this one's.
        (ContextType.PRODUCT, "Order book", "Product: Order book"),
    ],
)
def test_the_topic_says_the_kind_once(kind: ContextType, title: str, topic: str) -> None:
    assert room_topic(conversation_about(kind, title)) == topic


def buyer_message(text: str) -> Message:
    return Message(
        message_id=MessageID("m1"),
        conversation_id=ConversationID("c1"),
        sender=SenderKind.BUYER,
        sender_name="Anna",
        text=text,
        lang="en",
        status=MessageStatus.PENDING,
        created_at=datetime.now(UTC),
    )


def test_a_translated_message_keeps_its_original_behind_a_spoiler() -> None:
    message = replace(
        buyer_message("Is it <b>new</b>?"),
        original=Original("Он <b>новый</b>?", "ru"),
        translation=TranslationNote("ru", "en", "google"),
    )
    content = buyer_message_content(message)
    assert content["msgtype"] == "m.text"
    assert content["body"] == "Is it <b>new</b>?"
    assert content[MESSAGE_ID_KEY] == "m1"
    assert content["io.bazaar.original"] == {"body": "Он <b>новый</b>?", "lang": "ru"}
    assert content["formatted_body"] == (
        "Is it &lt;b&gt;new&lt;/b&gt;?<br><span data-mx-spoiler>Он &lt;b&gt;новый&lt;/b&gt;?</span>"
    )


def test_a_file_goes_with_the_text_as_its_caption() -> None:
    photo = Attachment(
        attachment_id="a1",
        kind=AttachmentKind.IMAGE,
        name="kettle.png",
        content_type="image/png",
        size=1234,
        mxc="mxc://localhost/abc",
        width=64,
        height=48,
    )
    content = buyer_message_content(replace(buyer_message("The dent"), attachments=(photo,)))
    assert content["msgtype"] == "m.image"
    assert (content["body"], content["filename"]) == ("The dent", "kettle.png")
    assert content["url"] == "mxc://localhost/abc"
    assert content["info"] == {"mimetype": "image/png", "size": 1234, "w": 64, "h": 48}
    assert content[MESSAGE_ID_KEY] == "m1"
