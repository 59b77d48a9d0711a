"""Blocking: either side of a seller–buyer pair can shut the other out of all their rooms.

The homeserver enforces it: a buyer blocked by the seller has power level −1 (the ghost
can't post), and a seller blocked by the buyer faces a raised `events_default` (the
members can't post). The store keeps who blocked whom; the courier brings rooms in line.
"""

from __future__ import annotations

import logging

from bridge.core.delivery import Courier
from bridge.core.events import Announcer
from bridge.core.ids import BuyerID, RoomID, SellerID, SiteID
from bridge.core.models import Conversation, Side
from bridge.core.ports import HomeserverUnavailable, MatrixPort, MatrixRejected, Repository

logger = logging.getLogger(__name__)


class Blocking:
    def __init__(
        self,
        repository: Repository,
        matrix: MatrixPort,
        courier: Courier,
        announcer: Announcer,
    ) -> None:
        self._repository = repository
        self._matrix = matrix
        self._courier = courier
        self._announcer = announcer

    async def set(
        self, site: SiteID, seller_id: SellerID, buyer_id: BuyerID, side: Side, blocked: bool
    ) -> list[Conversation]:
        """Block (or unblock) for one side; returns the conversations whose state changed."""
        changed = await self._repository.set_block(
            site, seller_id, buyer_id, side, blocked, self._announcer.conversation_state
        )
        logger.info(
            "%s %s %s/%s (%d conversations changed)",
            side.value,
            "blocked" if blocked else "unblocked",
            seller_id,
            buyer_id,
            len(changed),
        )
        pair = await self._repository.list_conversations(
            site, seller_id=seller_id, buyer_id=buyer_id
        )
        # Also when the state stays blocked: the other side's power levels change.
        await self._courier.refresh_members(
            [c.conversation_id for c in pair if c.room_id is not None]
        )
        for conversation in pair:
            self._announcer.published(conversation)
            if conversation.room_id is not None and side == Side.BUYER:
                await self._tell_sellers(conversation.room_id, blocked)
        return changed

    async def _tell_sellers(self, room_id: RoomID, blocked: bool) -> None:
        """The members would otherwise only notice a refused message."""
        text = (
            "The buyer has blocked this conversation: messages can't be sent."
            if blocked
            else "The buyer has unblocked this conversation."
        )
        try:
            await self._matrix.send_notice(room_id, text)
        except (HomeserverUnavailable, MatrixRejected) as error:
            logger.info("Could not tell %s about the block: %s", room_id, error)
