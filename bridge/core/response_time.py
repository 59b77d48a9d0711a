"""Response times: a buyer message opens a wait when none is open, the first reply by a
member (typed or a template; never an automatic message) closes it, and `!noreply` closes
it without counting. While a wait is open the room sits in the Space's Unanswered section;
at half of `bridge.response_target_hours` and an hour before it the bot reminds the team.

The wait opens in the transaction that stores the buyer message (`ResponseTimes.opening`,
handed to `add_message`); its reminders are stored with it, so a restart neither loses
nor repeats one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bridge.core.commands import Command, RoomCall
from bridge.core.ids import ConversationID, RoomID, SellerID, SiteID, UserID
from bridge.core.models import Conversation, ConversationState, Member, Message, Seller, Site
from bridge.core.seller_storage import DueReminder, ResponseWaits, WaitClosing, WaitOpening
from bridge.core.storage import Parties
from bridge.core.team import AnsweringRoles

logger = logging.getLogger(__name__)

HALF = "half"
LAST_HOUR = "last_hour"
REPLIED = "replied"
NOREPLY = "noreply"
CHECK_EVERY_SECONDS = 60.0
# Reminders read per run; more wait for the next one.
REMINDER_BATCH = 200

NOREPLY_HELP = (
    "!noreply — this conversation needs no answer: out of Unanswered, not counted in the figures",
)

RoomsFollow = Callable[[Sequence[ConversationID]], Awaitable[None]]


def room_link(room_id: RoomID) -> str:
    return f"https://matrix.to/#/{room_id}"


def duration(seconds: float) -> str:
    """A wait's length as a person says it: "40 min", "12 h", "1 h 30 min"."""
    minutes = max(0, int(seconds // 60))
    hours, minutes = divmod(minutes, 60)
    if hours == 0:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


class ResponseTimes:
    """Opens and closes waits; the rooms follow (`rooms_follow`: the courier's member sync,
    which puts a room in or out of Unanswered from its `waiting_since`)."""

    def __init__(
        self,
        store: ResponseWaits,
        rooms_follow: RoomsFollow,
        target_hours: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._rooms_follow = rooms_follow
        self._target = timedelta(hours=target_hours)
        self._clock = clock

    def opening(self, at: datetime) -> WaitOpening:
        """The wait a buyer message written `at` opens, if none is open: its reminders."""
        return WaitOpening(
            reminders=(
                (HALF, at + self._target / 2),
                (LAST_HOUR, at + self._target - timedelta(hours=1)),
            )
        )

    async def buyer_wrote(self, before: Conversation) -> None:
        """A new buyer message is stored; `before` is the conversation as loaded before it.
        When nothing was waiting then, this message opened a wait: the room follows."""
        if before.waiting_since is None and before.room_id is not None:
            await self._rooms_follow([before.conversation_id])

    async def member_replied(
        self, conversation: Conversation, seller: Seller, member: Member, reply: Message, new: bool
    ) -> None:
        """A member's reply is stored (`new`) or was already (a repeat of its event, after a
        crash perhaps): either way the wait it answers closes, once. A repeat closes only a
        wait opened before the reply, never the buyer's next one."""
        if reply.automatic:
            return
        await self._close(
            conversation,
            seller,
            REPLIED,
            member.user_id,
            reply.created_at,
            opened_before=None if new else reply.created_at,
        )

    async def _close(
        self,
        conversation: Conversation,
        seller: Seller,
        outcome: str,
        by: UserID,
        at: datetime,
        *,
        opened_before: datetime | None = None,
    ) -> bool:
        wait = await self._store.open_wait(conversation.conversation_id)
        if wait is None or (opened_before is not None and wait.opened_at > opened_before):
            return False
        closing = WaitClosing(
            closed_at=at,
            outcome=outcome,
            closed_by=by,
            wall_seconds=max(0.0, (at - wait.opened_at).total_seconds()),
            working_seconds=seller.working_hours.working_seconds(wait.opened_at, at),
        )
        closed = await self._store.close_wait(wait, closing)
        if closed and conversation.room_id is not None:
            await self._rooms_follow([conversation.conversation_id])
        return closed

    def command(self) -> Command[RoomCall]:
        return Command("noreply", NOREPLY_HELP, self.noreply)

    async def noreply(self, call: RoomCall) -> str:
        closed = await self._close(
            call.conversation, call.seller, NOREPLY, call.member.user_id, self._clock()
        )
        if not closed:
            return "Nothing waits for an answer here."
        return "No answer needed: this conversation is out of Unanswered and not counted."


class ReminderBoard(Protocol):
    """Where reminders are said: the seller's management room and the conversation room."""

    async def tell_seller(
        self,
        seller: Seller,
        members: Sequence[Member],
        site_name: str,
        text: str,
        key: str | None = None,
    ) -> None: ...

    async def send_notice_mentioning(
        self, room_id: RoomID, text: str, user_ids: Sequence[UserID]
    ) -> None: ...


class ReminderStore(ResponseWaits, Parties, Protocol):
    """The store as reminders use it."""


class Reminders:
    """The clock that sends reminders of waits due: `run` checks every minute; `run_once`
    is one check, at a given time for tests."""

    def __init__(
        self,
        store: ReminderStore,
        board: ReminderBoard,
        answering: AnsweringRoles,
        sites: Mapping[SiteID, Site],
        target_hours: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        every_seconds: float = CHECK_EVERY_SECONDS,
    ) -> None:
        self._store = store
        self._board = board
        self._answering = answering
        self._sites = sites
        self._target = timedelta(hours=target_hours)
        self._clock = clock
        self._every = every_seconds

    async def run_once(self, now: datetime | None = None) -> int:
        """Send the reminders due by `now`; returns how many waits were reminded of.

        Each reminder is claimed before its notices go out and done once they are: a failed
        send releases the claim for the next run, and a run that died mid-send leaves a
        claim the lease lets another run take again, sending under the same keys, which the
        homeserver drops as repeats. So a restart neither loses nor repeats one. Two
        reminders of one wait due at once (the bridge was down) make one line."""
        now = now or self._clock()
        due = await self._store.due_reminders(now, REMINDER_BATCH)
        if not due:
            return 0
        claimed = await self._store.claim_reminders([(r.wait_id, r.kind) for r in due], now)
        latest: dict[int, DueReminder] = {}
        for reminder in due:  # oldest first: the latest kind of each wait stays
            # A blocked buyer can't write on: their reminder is done, and said to nobody.
            blocked = reminder.conversation.state == ConversationState.BLOCKED
            if reminder.wait_id in claimed and not blocked:
                latest[reminder.wait_id] = reminder
        by_seller: dict[tuple[SiteID, SellerID], list[DueReminder]] = {}
        for reminder in latest.values():
            key = (reminder.conversation.site, reminder.conversation.seller_id)
            by_seller.setdefault(key, []).append(reminder)
        # Claimed but said to nobody (a blocked buyer's, an older kind of a wait): done.
        await self._store.finish_reminders(
            [(r.wait_id, r.kind) for r in due if r.wait_id in claimed and r.wait_id not in latest],
            now,
        )
        reminded = 0
        for (site, seller_id), reminders in by_seller.items():
            keys = [(r.wait_id, r.kind) for r in due if r.wait_id in {x.wait_id for x in reminders}]
            try:
                reminded += await self._remind(site, seller_id, reminders, now)
            except Exception:
                logger.exception(
                    "Reminders for %s/%s not sent; trying again later", site, seller_id
                )
                await self._store.release_reminders(keys)
            else:
                await self._store.finish_reminders(keys, now)
        return reminded

    async def _remind(
        self, site: SiteID, seller_id: SellerID, reminders: list[DueReminder], now: datetime
    ) -> int:
        seller = await self._store.get_seller(site, seller_id)
        place = self._sites.get(site)
        if seller is None or place is None:
            return 0
        members = self._answering.members(seller)
        lines = [await self._line(r, now) for r in reminders]
        target = duration(self._target.total_seconds())
        count = len(reminders)
        head = (
            f"⏰ {count} conversation{'s' if count > 1 else ''} "
            f"{'wait' if count > 1 else 'waits'} for an answer (target {target}):"
        )
        key = "reminders:" + ",".join(f"{r.wait_id}-{r.kind}" for r in reminders)
        # The management room's notice is the one that matters: if it fails, none is done.
        await self._board.tell_seller(seller, members, place.name, "\n".join([head, *lines]), key)
        user_ids = [member.user_id for member in members]
        for reminder in reminders:
            room_id = reminder.conversation.room_id
            if room_id is None or not user_ids:
                continue
            waited = duration((now - reminder.opened_at).total_seconds())
            try:
                await self._board.send_notice_mentioning(
                    room_id,
                    f"{' '.join(user_ids)}: the buyer has waited {waited} for an answer "
                    f"({self._left(reminder, now)}).",
                    user_ids,
                )
            except Exception:
                # Said in the management room already; not worth saying that twice.
                logger.exception("No reminder in %s", room_id)
        logger.info("Reminded %s/%s of %d waiting conversations", site, seller_id, count)
        return count

    def _left(self, reminder: DueReminder, now: datetime) -> str:
        left = reminder.opened_at + self._target - now
        if left <= timedelta(0):
            return f"the {duration(self._target.total_seconds())} target has passed"
        return f"{duration(left.total_seconds())} left of the target"

    async def _line(self, reminder: DueReminder, now: datetime) -> str:
        conversation = reminder.conversation
        buyer = await self._store.get_buyer(conversation.site, conversation.buyer_id)
        who = buyer.name if buyer is not None else conversation.buyer_id
        waited = duration((now - reminder.opened_at).total_seconds())
        where = f" — {room_link(conversation.room_id)}" if conversation.room_id is not None else ""
        return (
            f"• {who} about {conversation.context.title}: waiting {waited}, "
            f"{self._left(reminder, now)}{where}"
        )

    async def run(self) -> None:
        """Check now and then every minute, for as long as the bridge runs."""
        while True:
            try:
                await self.run_once()
            except Exception:
                logger.exception("Reminder check failed; trying again later")
            await asyncio.sleep(self._every)
