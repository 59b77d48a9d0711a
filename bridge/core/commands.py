"""Bot commands a seller member types in a conversation room (`!help`, `!block`, …)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from bridge.core.blocking import Blocking, BlockOutcome
from bridge.core.ids import EventID, RoomID, UserID
from bridge.core.models import Conversation, ConversationState, Member, Seller, SenderKind, Side
from bridge.core.ports import MatrixPort
from bridge.core.storage import ConversationRecords, MessageRecords

logger = logging.getLogger(__name__)

CallT = TypeVar("CallT", "RoomCall", "ManagementCall")

CONFIRM_WITHIN_SECONDS = 120

# The built-in commands' help lines; features add theirs through `Command`.
ROOM_HELP_LINES = (
    "!block — block this buyer in all your conversations (asks to confirm)",
    "!block confirm — confirm the block",
    "!unblock — let this buyer write to you again",
    "!original — the words of a message as written (reply to the message, or the buyer's latest)",
    "!translation off / !translation on — stop or resume translating this conversation",
)
MANAGEMENT_HELP_LINES = ("!status — how many conversations are active, archived and blocked",)


@dataclass(frozen=True)
class RoomCall:
    """A command a member typed in a conversation room."""

    conversation: Conversation
    seller: Seller
    member: Member
    # The words after the command's name, as typed (case kept, ends stripped).
    args: str
    reply_to: EventID | None = None
    event_id: EventID | None = None


@dataclass(frozen=True)
class ManagementCall:
    """A command a member typed in the seller's management room."""

    room_id: RoomID
    seller: Seller
    member: Member
    args: str
    event_id: EventID | None = None


@dataclass(frozen=True)
class Command(Generic[CallT]):
    """A command a feature adds: `run` answers with the bot's notice (None: says nothing,
    having answered otherwise). A `BadCommand` it raises becomes a notice that says what was
    wrong, followed by the usage."""

    name: str
    help: tuple[str, ...]
    run: Callable[[CallT], Awaitable[str | None]]


class BadCommand(Exception):
    """The command was understood but can't be done as asked; the message says why."""


class CommandStore(ConversationRecords, MessageRecords, Protocol):
    """The store as seller commands use it."""


def _answer_to_other(text: str, help_text: str) -> str:
    """`!help` gets the list; anything else the list after a line naming what was wrong."""
    said = " ".join(text[1:].split())
    if said.lower() == "help":
        return help_text
    shown = said if len(said) <= 40 else said[:39] + "…"
    return f"“!{shown}” is not a command I know.\n{help_text}"


def _help(title: str, lines: Sequence[str], footer: str | None = None) -> str:
    return "\n".join([title, *lines, "!help — this list", *([footer] if footer else [])])


def _split(text: str) -> tuple[str, str]:
    """A command's name (lower-cased, without "!") and the rest as typed."""
    name, _, args = text[1:].strip().partition(" ")
    return name.lower(), args.strip()


def is_command(text: str) -> bool:
    return text.startswith("!") and len(text) > 1 and not text.startswith("!!")


class SellerCommands:
    def __init__(
        self,
        store: CommandStore,
        matrix: MatrixPort,
        blocking: Blocking,
        clock: Callable[[], float] = time.monotonic,
        *,
        room_commands: Sequence[Command[RoomCall]] = (),
        management_commands: Sequence[Command[ManagementCall]] = (),
    ) -> None:
        self._store = store
        self._matrix = matrix
        self._blocking = blocking
        self._clock = clock
        self._pending_blocks: dict[tuple[RoomID, UserID], float] = {}
        self._room_commands = {command.name: command for command in room_commands}
        self._management_commands = {command.name: command for command in management_commands}
        self.help = _help(
            "Commands in a conversation room:",
            [*ROOM_HELP_LINES, *(line for c in room_commands for line in c.help)],
        )
        self.management_help = _help(
            "Commands here:",
            [*MANAGEMENT_HELP_LINES, *(line for c in management_commands for line in c.help)],
            "In a conversation room: "
            + ", ".join(
                ["!block", "!block confirm", "!unblock", "!original", "!translation off"]
                + ["!translation on"]
                + [f"!{c.name}" for c in room_commands]
                + ["!help"]
            ),
        )

    async def run(
        self,
        conversation: Conversation,
        seller: Seller,
        member: Member,
        text: str,
        *,
        reply_to: EventID | None = None,
        event_id: EventID | None = None,
    ) -> None:
        room_id = conversation.room_id
        if room_id is None:
            return
        sender = member.user_id
        name, args = _split(text)
        added = self._room_commands.get(name)
        if added is not None:
            call = RoomCall(conversation, seller, member, args, reply_to, event_id)
            await self._answer(room_id, added, call)
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
            await self._matrix.send_notice(room_id, _answer_to_other(text, self.help))

    async def _answer(self, room_id: RoomID, command: Command[CallT], call: CallT) -> None:
        try:
            answer = await command.run(call)
        except BadCommand as error:
            answer = "\n".join([str(error), *command.help])
        if answer is not None:
            await self._matrix.send_notice(room_id, answer)

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
        self,
        room_id: RoomID,
        seller: Seller,
        member: Member,
        text: str,
        *,
        event_id: EventID | None = None,
    ) -> None:
        """A command in the seller's management room."""
        name, args = _split(text)
        added = self._management_commands.get(name)
        if added is not None:
            await self._answer(
                room_id, added, ManagementCall(room_id, seller, member, args, event_id)
            )
            return
        words = text[1:].strip().lower().split()
        if words == ["status"]:
            conversations = await self._store.list_conversations(
                seller.site, seller_id=seller.seller_id
            )
            counts = Counter(conversation.state for conversation in conversations)
            await self._matrix.send_notice(
                room_id,
                "Conversations: "
                + ", ".join(f"{counts[state]} {state.value}" for state in ConversationState),
            )
        else:
            await self._matrix.send_notice(room_id, _answer_to_other(text, self.management_help))

    async def _set_block(self, conversation: Conversation, *, blocked: bool) -> BlockOutcome:
        return await self._blocking.set(
            conversation.site, conversation.seller_id, conversation.buyer_id, Side.SELLER, blocked
        )
