"""The room's side of orders and offers: `io.bazaar.order` state (state key the order id)
and, for a conversation about the order, its status in the topic; `io.bazaar.offer` state
(state key the offer id)."""

from __future__ import annotations

from typing import Final

from bridge.core.ids import EventID, RoomID
from bridge.core.models import ContextType, Conversation
from bridge.core.offers import Offer, offer_json
from bridge.core.orders import Order, order_json
from bridge.matrix.content import room_topic
from bridge.matrix.gateway import MatrixGateway
from bridge.matrix.rooms import MatrixRooms

ORDER_STATE = "io.bazaar.order"
OFFER_STATE = "io.bazaar.offer"
_OFFER_KEYS: Final = ("status", "title", "quantity", "price", "total", "currency", "checkout_url")


class MatrixOrders:
    def __init__(self, gateway: MatrixGateway, rooms: MatrixRooms) -> None:
        self._gateway = gateway
        self._rooms = rooms

    async def show_order(self, conversation: Conversation, order: Order) -> None:
        if conversation.room_id is None:
            return
        content = order_json(order)
        state = {key: content[key] for key in ("status", "total", "currency", "url", "items")}
        await self._gateway.put_state(conversation.room_id, ORDER_STATE, state, order.order_id)
        context = conversation.context
        if context.type == ContextType.ORDER and context.id == order.order_id:
            topic = room_topic(conversation, order.status.value)
            await self._gateway.put_state(conversation.room_id, "m.room.topic", {"topic": topic})

    async def show_offer(self, conversation: Conversation, offer: Offer) -> None:
        if conversation.room_id is None:
            return
        content = offer_json(offer)
        state = {key: content[key] for key in _OFFER_KEYS}
        await self._gateway.put_state(conversation.room_id, OFFER_STATE, state, offer.offer_id)

    async def send_tracked_notice(
        self, room_id: RoomID, text: str, key: str | None = None
    ) -> EventID:
        return await self._rooms.send_tracked_notice(room_id, text, key)
