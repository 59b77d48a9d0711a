"""What the buyer's widget shows of a conversation's offers and orders: its cards.

The buyer sees an offer from the moment the marketplace opens it (a pending offer is the
seller's and the marketplace's business), and every order, the one the conversation is
about first.
"""

from __future__ import annotations

from typing import Protocol

from typing_extensions import TypedDict

from bridge.core.ids import ConversationID, SiteID
from bridge.core.models import Buyer, ContextType, Conversation
from bridge.core.offers import BuyerOfferView, Offer, OfferStatus, buyer_offer_json
from bridge.core.orders import Order, OrderView, order_json
from bridge.core.refusals import unknown_conversation


class ConversationCards(TypedDict):
    """The cards the widget draws: every order (the one the conversation is about first)
    and the offers the marketplace opened, ended ones too."""

    orders: list[OrderView]
    offers: list[BuyerOfferView]


class CardStore(Protocol):
    async def get_conversation(
        self, site: SiteID, conversation_id: ConversationID
    ) -> Conversation | None: ...

    async def list_orders(self, conversation_id: ConversationID) -> list[Order]: ...

    async def list_offers(self, conversation_id: ConversationID) -> list[Offer]: ...


class BuyerCards:
    def __init__(self, store: CardStore) -> None:
        self._store = store

    async def cards(self, buyer: Buyer, conversation_id: ConversationID) -> ConversationCards:
        conversation = await self._store.get_conversation(buyer.site, conversation_id)
        if conversation is None or conversation.buyer_id != buyer.buyer_id:
            raise unknown_conversation(conversation_id)
        orders = await self._store.list_orders(conversation.conversation_id)
        offers = await self._store.list_offers(conversation.conversation_id)
        context = conversation.context
        about = context.id if context.type == ContextType.ORDER else None
        orders.sort(key=lambda order: order.order_id != about)  # stable: the rest keep order
        return {
            "orders": [order_json(order) for order in orders],
            "offers": [
                buyer_offer_json(offer) for offer in offers if offer.status != OfferStatus.PENDING
            ],
        }
