"""Bot commands a seller member types in a conversation room (`!help`, `!block`, …)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

from bridge.core.blocking import Blocking, BlockOutcome
from bridge.core.ids import EventID, RoomID, UserID
from bridge.core.models import Conversation, ConversationState, SenderKind, Side
from bridge.core.ports import MatrixPort
from bridge.core.storage import ConversationRecords, MessageRecords

logger = logging.getLogger(__name__)

CONFIRM_WITHIN_SECONDS = 120

HELP = (
    "Commands in a conversation room:\n"
    "!block — block this buyer in all your conversations (asks to confirm)\n"
    "!block confirm — confirm the block\n"
    "!unblock — let this buyer write to you again\n"
    "!original — the words of a message as written (reply to the message, or the buyer's "
    "latest)\n"
    "!translation off / !translation on — stop or resume translating this conversation\n"
    "!help — this list"
)


MANAGEMENT_HELP = (
    "Commands here:\n"
    "!status — how many conversations are active, archived and blocked\n"
    "!help — this list\n"
    "In a conversation room: !block, !block confirm, !unblock, !original, "
    "!translation off, !translation on, !help"
)


class CommandStore(ConversationRecords, MessageRecords, Protocol):
    """The store as seller commands use it."""


def _answer_to_other(text: str, help_text: str) -> str:
    """`!help` gets the list; anything else the list after a line naming what was wrong."""
    said = " ".join(text[1:].split())
    if said.lower() == "help":
        return help_text
    shown = said if len(said) <= 40 else said[:39] + "…"
    return f"“!{shown}” is not a command I know.\n{help_text}"


def is_command(text: str) -> bool:
    return text.startswith("!") and len(text) > 1 and not text.startswith("!!")


class SellerCommands:
    def __init__(
        self,
        store: CommandStore,
        matrix: MatrixPort,
        blocking: Blocking,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._matrix = matrix
        self._blocking = blocking
        self._clock = clock
        self._pending_blocks: dict[tuple[RoomID, UserID], float] = {}

    async def run(
        self,
        conversation: Conversation,
        sender: UserID,
        text: str,
        *,
        reply_to: EventID | None = None,
    ) -> None:
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
            outcome = await self._set_block(conversation, blocked=True)
            await self._matrix.send_notice(
                room_id,
                (
                    "Blocked. The buyer can no longer write to you in any conversation. "
                    if outcome.changed
                    else "This buyer is already blocked. "
                )
                + "Say !unblock to undo.",
            )
        elif command == "block" and not rest:
            if Side.SELLER in conversation.blocked_by:
                await self._matrix.send_notice(
                    room_id, "This buyer is already blocked. Say !unblock to undo."
                )
                return
            self._pending_blocks[(room_id, sender)] = self._clock()
            await self._matrix.send_notice(
                room_id,
                "Block this buyer in all your conversations? "
                f"Say !block confirm within {CONFIRM_WITHIN_SECONDS // 60} minutes.",
            )
        elif command == "unblock" and not rest:
            outcome = await self._set_block(conversation, blocked=False)
            await self._matrix.send_notice(
                room_id,
                "Unblocked. The buyer can write to you again."
                if outcome.changed
                else "This buyer is not blocked.",
            )
        elif command == "original" and not rest:
            await self._matrix.send_notice(room_id, await self._original(conversation, reply_to))
        elif command == "translation" and rest in (["off"], ["on"]):
            enabled = rest == ["on"]
            await self._store.set_translation_enabled(conversation.conversation_id, enabled)
            await self._matrix.send_notice(
                room_id,
                "Translation is on: messages are translated between your language and the buyer's."
                if enabled
                else "Translation is off: messages in this conversation go as written. "
                "Say !translation on to resume.",
            )
        else:
            await self._matrix.send_notice(room_id, _answer_to_other(text, HELP))

    async def _original(self, conversation: Conversation, reply_to: EventID | None) -> str:
        if reply_to is not None:
            message = await self._store.message_by_event(reply_to)
            if message is None or message.conversation_id != conversation.conversation_id:
                return "That message did not pass through the bridge, so it has no original."
        else:
            recent = await self._store.list_messages_before(
                conversation.conversation_id, before=None, limit=50
            )
            message = next((m for m in reversed(recent) if m.sender == SenderKind.BUYER), None)
            if message is None:
                return "The buyer has not written yet."
        if message.original is None:
            note = message.translation
            if note is not None and note.failed:
                return f"This message was not translated; it reads as written:\n{message.text}"
            return "This message was not translated; what you see is what was written."
        return f"Original ({message.original.lang}):\n{message.original.text}"

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
            await self._matrix.send_notice(room_id, _answer_to_other(text, MANAGEMENT_HELP))

    async def _set_block(self, conversation: Conversation, *, blocked: bool) -> BlockOutcome:
        return await self._blocking.set(
            conversation.site, conversation.seller_id, conversation.buyer_id, Side.SELLER, blocked
        )
