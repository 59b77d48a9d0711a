"""The seller's desk in a conversation room: `!label`, `!unlabel`, `!note`, `!assign` and
`!report`. Each is a `Command` that `SellerCommands` runs; none of them reaches the buyer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from bridge.core.commands import CONFIRM_WITHIN_SECONDS, BadCommand, Command, RoomCall
from bridge.core.events import Announcer
from bridge.core.ids import RoomID, UserID
from bridge.core.labels import BadLabel, NotAnswering, SellerMarks
from bridge.core.storage import FeedWriter
from bridge.core.team import AnsweringRoles
from bridge.core.views import timestamp

logger = logging.getLogger(__name__)

MAX_NOTE_CHARS = 4000
MAX_REASON_CHARS = 1000

LABEL_HELP = (
    "!label <label> — label this conversation (letters, digits and -, e.g. zone-north); "
    "your Space gets a section for it",
)
UNLABEL_HELP = ("!unlabel <label> — take a label off this conversation",)
NOTE_HELP = ("!note <text> — a note for the team here; the buyer never sees it",)
ASSIGN_HELP = ("!assign me / !assign @user:server / !assign none — who answers this conversation",)
REPORT_HELP = (
    "!report <reason> — report this buyer to the marketplace (asks to confirm)",
    "!report confirm — confirm the report",
)


class DeskBoard(Protocol):
    """What the desk's commands say in Matrix besides their plain notices."""

    async def send_notice_mentioning(
        self, room_id: RoomID, text: str, user_ids: list[UserID]
    ) -> None: ...

    async def display_name(self, user_id: UserID) -> str | None: ...


class DeskCommands:
    def __init__(
        self,
        marks: SellerMarks,
        answering: AnsweringRoles,
        store: FeedWriter,
        announcer: Announcer,
        board: DeskBoard,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._marks = marks
        self._answering = answering
        self._store = store
        self._announcer = announcer
        self._board = board
        self._clock = clock
        self._now = now
        # A report asked for and not yet confirmed, per room and member: its reason and when.
        self._pending_reports: dict[tuple[RoomID, UserID], tuple[str, float]] = {}

    def commands(self) -> list[Command[RoomCall]]:
        return [
            Command("label", LABEL_HELP, self.label),
            Command("unlabel", UNLABEL_HELP, self.unlabel),
            Command("note", NOTE_HELP, self.note),
            Command("assign", ASSIGN_HELP, self.assign),
            Command("report", REPORT_HELP, self.report),
        ]

    async def label(self, call: RoomCall) -> str:
        if not call.args:
            raise BadCommand("Say which label, e.g. !label zone-north")
        try:
            conversation = await self._marks.add_label(call.conversation, call.args)
        except BadLabel as error:
            raise BadCommand(error.error) from None
        added = call.args.strip().lower()
        if added in call.conversation.labels:
            return f"This conversation is labelled {added} already."
        return f"Labelled {added}. Labels here: {', '.join(conversation.labels)}."

    async def unlabel(self, call: RoomCall) -> str:
        if not call.args:
            raise BadCommand("Say which label to take off, e.g. !unlabel zone-north")
        try:
            conversation = await self._marks.remove_label(call.conversation, call.args)
        except BadLabel as error:
            raise BadCommand(error.error) from None
        gone = call.args.strip().lower()
        if gone not in call.conversation.labels:
            return f"This conversation has no label {gone}."
        left = ", ".join(conversation.labels) if conversation.labels else "none"
        return f"Took off the label {gone}. Labels here: {left}."

    async def note(self, call: RoomCall) -> str:
        if not call.args:
            raise BadCommand("A note needs its words.")
        if len(call.args) > MAX_NOTE_CHARS:
            raise BadCommand(f"A note has at most {MAX_NOTE_CHARS} characters.")
        name = await self._board.display_name(call.member.user_id) or call.member.user_id
        return f"📝 Note by {name}: {call.args}"

    async def assign(self, call: RoomCall) -> str | None:
        said = call.args.strip()
        if not said:
            raise BadCommand("Say who answers this conversation.")
        if said.lower() == "none":
            await self._marks.assign(call.conversation, call.seller, None)
            return "Nobody in particular answers this conversation now."
        user_id = call.member.user_id if said.lower() == "me" else await self._member(call, said)
        try:
            await self._marks.assign(call.conversation, call.seller, user_id)
        except NotAnswering as error:
            raise BadCommand(f"{error.error}: {self._who_answers(call)}") from None
        room_id = call.conversation.room_id
        if room_id is not None:
            await self._board.send_notice_mentioning(
                room_id, f"{user_id} answers this conversation now.", [user_id]
            )
        return None

    async def _member(self, call: RoomCall, said: str) -> UserID:
        """The member named by user id or, as a client writes a mention's pill in the plain
        body, by display name."""
        members = self._answering.members(call.seller)
        for member in members:
            if member.user_id == said:
                return member.user_id
        if said.startswith("@"):
            return UserID(said)
        for member in members:
            name = await self._board.display_name(member.user_id)
            if name is not None and name.casefold() == said.casefold():
                return member.user_id
        raise BadCommand(f"“{said[:60]}” is nobody who answers here: {self._who_answers(call)}")

    def _who_answers(self, call: RoomCall) -> str:
        members = self._answering.members(call.seller)
        return "assign one of " + ", ".join(member.user_id for member in members)

    async def report(self, call: RoomCall) -> str:
        room_id = call.conversation.room_id
        key = (room_id or RoomID(""), call.member.user_id)
        reason = call.args.strip()
        if reason.lower() == "confirm":
            asked = self._pending_reports.pop(key, None)
            if asked is None or self._clock() - asked[1] > CONFIRM_WITHIN_SECONDS:
                return "Nothing to confirm: say !report <reason> first."
            return await self._send_report(call, asked[0])
        if not reason:
            raise BadCommand("Say why you report this buyer.")
        if len(reason) > MAX_REASON_CHARS:
            raise BadCommand(f"A reason has at most {MAX_REASON_CHARS} characters.")
        self._pending_reports[key] = (reason, self._clock())
        return (
            f"Report this buyer to the marketplace for “{reason}”? "
            f"Say !report confirm within {CONFIRM_WITHIN_SECONDS // 60} minutes."
        )

    async def _send_report(self, call: RoomCall, reason: str) -> str:
        conversation = call.conversation
        report = {
            "conversation_id": conversation.conversation_id,
            "seller_id": conversation.seller_id,
            "buyer_id": conversation.buyer_id,
            "reported_by": call.member.user_id,
            "reason": reason,
            "created_at": timestamp(self._now()),
        }
        events = self._announcer.buyer_reported(conversation, report)
        if not events:
            return "This marketplace takes no reports here (it has no webhook); nothing was sent."
        await self._store.add_frames(events)
        self._announcer.published(conversation)
        logger.info("%s reported the buyer of %s", call.member.user_id, conversation.room_id)
        return "Reported: the marketplace has your report of this buyer."
