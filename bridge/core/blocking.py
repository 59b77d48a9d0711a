"""Blocking: either side of a seller–buyer pair can shut the other out of all their rooms.

The homeserver enforces it: a buyer blocked by the seller has power level −1 (the ghost
can't post), and a seller blocked by the buyer faces a raised `events_default` (the
members can't post). The store keeps who blocked whom; the courier brings rooms in line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bridge.core.delivery import Courier
from bridge.core.events import Announcer
from bridge.core.ids import BuyerID, RoomID, SellerID, SiteID
from bridge.core.models import Side
from bridge.core.ports import HomeserverUnavailable, MatrixPort, MatrixRejected
from bridge.core.storage import Blocks

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BlockOutcome:
    """What one side's block or unblock did to the pair."""

    # The side's block was added or lifted; False when it already stood (or was not there).
    changed: bool
    # Who blocks the pair now.
    blocked_by: frozenset[Side]


class Blocking:
    def __init__(
        self,
        blocks: Blocks,
        matrix: MatrixPort,
        courier: Courier,
        announcer: Announcer,
    ) -> None:
        self._blocks = blocks
        self._matrix = matrix
        self._courier = courier
        self._announcer = announcer

    async def set(
        self, site: SiteID, seller_id: SellerID, buyer_id: BuyerID, side: Side, blocked: bool
    ) -> BlockOutcome:
        """Block (or unblock) for one side. A repeat, or lifting a block this side never
        set, changes nothing and tells nobody: the other side's block is not this side's to
        lift, and the sellers hear only of what really happened."""
        changed = await self._blocks.set_block(
            site, seller_id, buyer_id, side, blocked, self._announcer.conversation_state
        )
        if not changed:
            logger.info(
                "%s %s %s/%s: already so",
                side.value,
                "blocked" if blocked else "unblocked",
                seller_id,
                buyer_id,
            )
            return BlockOutcome(False, await self._blocks.blocks(site, seller_id, buyer_id))
        blocked_by = changed[0].blocked_by
        logger.info(
            "%s %s %s/%s (%d conversations)",
            side.value,
            "blocked" if blocked else "unblocked",
            seller_id,
            buyer_id,
            len(changed),
        )
        # Also when the state stays blocked: the other side's power levels change.
        await self._courier.refresh_members(
            [c.conversation_id for c in changed if c.room_id is not None]
        )
        for conversation in changed:
            self._announcer.published(conversation)
            if conversation.room_id is not None and side == Side.BUYER:
                await self._tell_sellers(conversation.room_id, blocked, blocked_by)
        return BlockOutcome(True, blocked_by)

    async def _tell_sellers(
        self, room_id: RoomID, blocked: bool, blocked_by: frozenset[Side]
    ) -> None:
        """The members would otherwise only notice a refused message."""
        if blocked:
            text = "The buyer has blocked this conversation: messages can't be sent."
        elif Side.SELLER in blocked_by:
            text = (
                "The buyer has lifted their block; yours still stands. "
                "Say !unblock to let them write again."
            )
        else:
            text = "The buyer has unblocked this conversation."
        try:
            await self._matrix.send_notice(room_id, text)
        except (HomeserverUnavailable, MatrixRejected) as error:
            logger.info("Could not tell %s about the block: %s", room_id, error)
