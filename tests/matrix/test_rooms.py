"""How a conversation's topic reads: the kind of context once, never twice."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.core.ids import BuyerID, ConversationID, SellerID, SiteID
from bridge.core.models import Context, ContextType, Conversation, ConversationState
from bridge.matrix.rooms import room_topic


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
