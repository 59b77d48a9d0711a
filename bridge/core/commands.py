"""Bot commands a seller member types in a conversation room (`!help`, `!block`, …)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence

from bridge.core.blocking import Blocking
from bridge.core.ids import RoomID, UserID
from bridge.core.models import Conversation, ConversationState, Side
from bridge.core.ports import MatrixPort

logger = logging.getLogger(__name__)

CONFIRM_WITHIN_SECONDS = 120

HELP = (
    "Commands in a conversation room:\n"
    "!block — block this buyer in all your conversations (asks to confirm)\n"
    "!block confirm — confirm the block\n"
    "!unblock — let this buyer write to you again\n"
    "!help — this list"
)


MANAGEMENT_HELP = (
    "Commands here:\n"
    "!status — how many conversations are active, archived and blocked\n"
    "!help — this list\n"
    "In a conversation room: !block, !block confirm, !unblock, !help"
)


def is_command(text: str) -> bool:
    return text.startswith("!") and len(text) > 1 and not text.startswith("!!")


class SellerCommands:
    def __init__(
        self,
        matrix: MatrixPort,
        blocking: Blocking,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._matrix = matrix
        self._blocking = blocking
        self._clock = clock
        self._pending_blocks: dict[tuple[RoomID, UserID], float] = {}

    async def run(self, conversation: Conversation, sender: UserID, text: str) -> None:
        room_id = conversation.room_id
        if room_id is None:
            return
        words = text[1:].strip().lower().split()
        command, rest = (words[0], words[1:]) if words else ("", [])
        if command == "block" and rest == ["confirm"]:
            asked = self._pending_blocks.pop((room_id, sender), None)
            if asked is None or self._clock() - asked > CONFIRM_WITHIN_SECONDS:
                await self._matrix.send_notice(room_id, "Nothing to confirm: say !block first.")
                return
            await self._set_block(conversation, blocked=True)
            await self._matrix.send_notice(
                room_id,
                "Blocked. The buyer can no longer write to you in any conversation. "
                "Say !unblock to undo.",
            )
        elif command == "block" and not rest:
            self._pending_blocks[(room_id, sender)] = self._clock()
            await self._matrix.send_notice(
                room_id,
                "Block this buyer in all your conversations? "
                f"Say !block confirm within {CONFIRM_WITHIN_SECONDS // 60} minutes.",
            )
        elif command == "unblock" and not rest:
            await self._set_block(conversation, blocked=False)
            await self._matrix.send_notice(room_id, "Unblocked. The buyer can write to you again.")
        else:
            await self._matrix.send_notice(room_id, HELP)

    async def run_management(
        self, room_id: RoomID, conversations: Sequence[Conversation], text: str
    ) -> None:
        """A command in the seller's management room."""
        words = text[1:].strip().lower().split()
        if words == ["status"]:
            counts = Counter(conversation.state for conversation in conversations)
            await self._matrix.send_notice(
                room_id,
                "Conversations: "
                + ", ".join(f"{counts[state]} {state.value}" for state in ConversationState),
            )
        else:
            await self._matrix.send_notice(room_id, MANAGEMENT_HELP)

    async def _set_block(self, conversation: Conversation, *, blocked: bool) -> None:
        await self._blocking.set(
            conversation.site, conversation.seller_id, conversation.buyer_id, Side.SELLER, blocked
        )
