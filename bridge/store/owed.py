"""Whether a conversation room is still owed anything after a round of deliveries: an
automatic message's notice, an order's state or notice, an offer's status. Nearly every
round owes nothing, and one read says so where the three readers would take four."""

from __future__ import annotations

from sqlalchemy import BindParameter, bindparam, exists, or_, select

from bridge.core.ids import ConversationID
from bridge.store.automatic import owes_notice
from bridge.store.base import Sessions
from bridge.store.offers import offer_status_owed
from bridge.store.orders import order_notice_owed, order_state_owed
from bridge.store.schema import MessageRow, OfferRow, OrderRow

_CONVERSATION: BindParameter[str] = bindparam("id")
# Built once: read after each round of a conversation's deliveries.
_OWES_ROOM = select(
    or_(
        # Found by the event id's index: only the messages not in a room yet have none.
        exists().where(
            MessageRow.conversation_id == _CONVERSATION,
            MessageRow.event_id.is_(None),
            or_(owes_notice(), order_notice_owed()),
        ),
        exists().where(OrderRow.conversation_id == _CONVERSATION, order_state_owed()),
        exists().where(OfferRow.conversation_id == _CONVERSATION, offer_status_owed()),
    )
)


class RoomDuesStore(Sessions):
    async def owes_room(self, conversation_id: ConversationID) -> bool:
        """Whether the room has anything to be told that the readers of automatic notices,
        orders and offers would find (a superset: they apply their own order rules)."""
        found = await self._read_first(_OWES_ROOM, {"id": conversation_id})
        return bool(found is not None and found[0])
