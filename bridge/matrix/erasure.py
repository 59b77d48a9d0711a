"""The Matrix side of a buyer's erasure (`core/erasure.ErasedRooms`): redactions by the
bot, and the erased profile in the room and on the ghost."""

from __future__ import annotations

import hashlib
import logging

from bridge.core.ids import EventID, RoomID
from bridge.core.models import Buyer, Conversation
from bridge.core.ports import MatrixRejected
from bridge.matrix.content import CARD_KEY
from bridge.matrix.gateway import MatrixGateway
from bridge.matrix.identifiers import MatrixNames
from bridge.matrix.rooms import MatrixRooms

logger = logging.getLogger(__name__)

# Pages of the bot's messages looked through for the buyer's card (it opens the room).
MAX_CARD_PAGES = 200


class MatrixErasure:
    def __init__(self, gateway: MatrixGateway, rooms: MatrixRooms, names: MatrixNames) -> None:
        self._gateway = gateway
        self._rooms = rooms
        self._names = names

    async def redact(self, room_id: RoomID, event_id: EventID, reason: str) -> None:
        # As the bot, whose power level allows redacting anyone's event: the ghost may have
        # left the room (a block) and could no longer redact its own.
        key = hashlib.sha256(f"{room_id}/{event_id}".encode()).hexdigest()[:32]
        await self._gateway.redact(room_id, event_id, reason, txn_id=f"bazaar-erase-{key}")

    async def show_erased(self, conversation: Conversation, buyer: Buyer) -> None:
        room_id = conversation.room_id
        if room_id is None:
            return
        # The profile state, the room's name (it starts with the buyer's name), the ghost's
        # display name: as after any change of the buyer.
        await self._rooms.update_context(conversation, buyer)
        ghost = self._names.ghost(buyer.site, buyer.buyer_id)
        try:
            await self._gateway.set_avatar_url(ghost, "")
        except MatrixRejected as error:
            logger.warning("The avatar of %s stays: %s", ghost, error)
        for event_id in await self._cards(room_id):
            await self.redact(room_id, event_id, "erased at the buyer's request")

    async def _cards(self, room_id: RoomID) -> list[EventID]:
        """The bot's notices of the buyer's profile in the room (redacted ones have no
        content left, so a second run finds none)."""
        found: list[EventID] = []
        before: str | None = None
        for _ in range(MAX_CARD_PAGES):
            events, before = await self._gateway.recent_messages(
                room_id, [self._names.bot], before=before
            )
            for event in events:
                content = event.get("content")
                event_id = event.get("event_id")
                is_card = isinstance(content, dict) and content.get(CARD_KEY) == "buyer"
                if is_card and isinstance(event_id, str):
                    found.append(EventID(event_id))
            if before is None or not events:
                break
        return found
