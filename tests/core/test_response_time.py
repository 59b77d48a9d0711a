"""Response times without I/O: which messages open and close a wait, `!noreply`, the
lengths in wall-clock and working hours, the Unanswered section as the room's syncs set it,
and the reminders as a driven clock brings them, once, across a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from bridge.core.archive import Archive
from bridge.core.auto_replies import AutoReplies
from bridge.core.blocking import Blocking
from bridge.core.commands import SellerCommands
from bridge.core.delivery import Backoff, Courier
from bridge.core.events import Announcer, Event
from bridge.core.hours import WeeklyHours, WorkingHours
from bridge.core.ids import BuyerID, ConversationID, EventID, RoomID, SellerID, SiteID, UserID
from bridge.core.marketplace_desk import MarketplaceDesk
from bridge.core.models import Buyer, Conversation, Member, Message, Seller, SenderKind, Site
from bridge.core.ports import HomeserverUnavailable
from bridge.core.replies import SellerReplies
from bridge.core.response_time import Reminders, ResponseTimes
from bridge.core.room_events import RoomMessage
from bridge.core.seller_storage import (
    REMINDER_LEASE,
    DueReminder,
    OpenWait,
    WaitClosing,
    WaitOpening,
)
from bridge.core.tasks import TaskKeeper
from bridge.core.team import AnsweringRoles
from bridge.core.translation import Translations
from tests.core.fakes import OWNER, SITE, DictCache, FakeMedia, conversation
from tests.core.test_auto_replies import AutoStore, Homeserver

# Monday 2 March 2026, 09:00 UTC; Vilnius is UTC+2 in winter.
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MANAGER = Member(UserID("@manager:hs"), "manager")
STAFF = Member(UserID("@staff:hs"), "staff")
WEEKDAYS = WeeklyHours.parse(
    {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
)
VILNIUS_WEEKDAYS = WorkingHours("Europe/Vilnius", WEEKDAYS)
HOUR = 3600.0


@dataclass
class WaitRecord:
    wait_id: int
    conversation_id: ConversationID
    opened_at: datetime
    opened_by: str
    first: bool
    closing: WaitClosing | None = None


class WaitingStore(AutoStore):
    """The fake store with waits and their reminders, kept as the SQL store keeps them."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[WaitRecord] = []
        # (wait id, kind) -> [due at, done at]
        self.reminders: dict[tuple[int, str], list[datetime | None]] = {}
        self.claims: dict[tuple[int, str], datetime] = {}

    async def add_message(
        self,
        message: Message,
        events: Sequence[Event],
        *,
        wait: object = None,
        notices: Sequence[Message] = (),
    ) -> tuple[Message, bool]:
        for earlier in self.messages.values():
            if message.event_id is not None and earlier.event_id == message.event_id:
                return earlier, False
        stored, created = await super().add_message(message, events)
        chat = self.conversations[message.conversation_id]
        if (
            not created
            or not isinstance(wait, WaitOpening)
            or message.sender != SenderKind.BUYER
            or chat.waiting_since is not None
        ):
            return stored, created
        self.conversations[chat.conversation_id] = replace(chat, waiting_since=message.created_at)
        first = not any(w.conversation_id == chat.conversation_id for w in self.waits)
        record = WaitRecord(
            len(self.waits) + 1, chat.conversation_id, message.created_at, message.message_id, first
        )
        self.waits.append(record)
        for kind, due_at in wait.reminders:
            self.reminders[(record.wait_id, kind)] = [due_at, None]
        return stored, created

    async def open_wait(self, conversation_id: ConversationID) -> OpenWait | None:
        for wait in reversed(self.waits):
            if wait.conversation_id == conversation_id and wait.closing is None:
                return OpenWait(wait.wait_id, wait.conversation_id, wait.opened_at)
        return None

    async def close_wait(self, wait: OpenWait, closing: WaitClosing) -> bool:
        record = self.waits[wait.wait_id - 1]
        if record.closing is not None:
            return False
        record.closing = closing
        chat = self.conversations[wait.conversation_id]
        self.conversations[chat.conversation_id] = replace(chat, waiting_since=None)
        for key in [k for k, (_, done) in self.reminders.items() if k[0] == wait.wait_id]:
            if self.reminders[key][1] is None:
                del self.reminders[key]
        return True

    def _claimable(self, key: tuple[int, str], now: datetime) -> bool:
        claimed_at = self.claims.get(key)
        return claimed_at is None or claimed_at < now - REMINDER_LEASE

    async def due_reminders(self, now: datetime, limit: int) -> list[DueReminder]:
        due = []
        for (wait_id, kind), (due_at, done_at) in self.reminders.items():
            record = self.waits[wait_id - 1]
            if (
                done_at is None
                and self._claimable((wait_id, kind), now)
                and due_at is not None
                and due_at <= now
                and not record.closing
            ):
                chat = self.conversations[record.conversation_id]
                due.append(DueReminder(wait_id, kind, due_at, chat, record.opened_at))
        return sorted(due, key=lambda r: (r.due_at, r.wait_id))[:limit]

    async def claim_reminders(self, keys: Sequence[tuple[int, str]], at: datetime) -> set[int]:
        claimed = set()
        for key in keys:
            if (
                key in self.reminders
                and self.reminders[key][1] is None
                and self._claimable(key, at)
            ):
                self.claims[key] = at
                claimed.add(key[0])
        return claimed

    async def finish_reminders(self, keys: Sequence[tuple[int, str]], at: datetime) -> None:
        for key in keys:
            if key in self.reminders:
                self.reminders[key][1] = at

    async def release_reminders(self, keys: Sequence[tuple[int, str]]) -> None:
        for key in keys:
            self.claims.pop(key, None)


@dataclass
class Shop:
    store: WaitingStore
    homeserver: Homeserver
    courier: Courier
    desk: MarketplaceDesk
    replies: SellerReplies
    times: ResponseTimes
    chat: Conversation
    buyer: Buyer
    now: list[datetime] = field(default_factory=lambda: [MONDAY])
    sites: dict[SiteID, Site] = field(default_factory=dict)
    answering: AnsweringRoles = field(
        default_factory=lambda: AnsweringRoles(frozenset({"owner", "manager"}))
    )

    def at(self, moment: datetime) -> None:
        self.now[0] = moment

    @property
    def current(self) -> Conversation:
        return self.store.conversations[self.chat.conversation_id]

    @property
    def room_id(self) -> RoomID:
        assert self.chat.room_id is not None
        return self.chat.room_id

    async def settled(self) -> None:
        for _ in range(10_000):
            if not self.courier.busy:
                return
            await asyncio.sleep(0)
        raise AssertionError("the courier never settled")

    async def buyer_says(self, text: str, client_id: str | None = None) -> bool:
        _, created = await self.desk.post_buyer_message(
            self.current, self.buyer, text, client_id or text
        )
        await self.settled()
        return created

    async def member_says(self, text: str, event: str, member: Member = OWNER) -> None:
        """A member's message in the room, as the homeserver's transaction brings it."""
        await self.replies.on_message(
            self.current,
            RoomMessage(self.room_id, member.user_id, EventID(event), text, None, self.now[0]),
        )
        await self.settled()

    def reminders(self) -> Reminders:
        """A reminder clock over the shop's store, as a (re)started bridge makes one."""
        return Reminders(
            self.store,
            self.homeserver,
            self.answering,
            self.sites,
            24,
            clock=lambda: self.now[0],
        )

    def room_notices(self) -> list[str]:
        return self.homeserver.room(self.room_id).notices

    def told(self) -> list[str]:
        return self.homeserver.told.get(SellerID("acme"), [])


def shop(*, greeting: str | None = None, hours: WeeklyHours | None = WEEKDAYS) -> Shop:
    store = WaitingStore()
    store.sellers[SellerID("acme")] = Seller(
        SITE,
        SellerID("acme"),
        "ACME",
        "en",
        greeting=greeting,
        members=(OWNER, MANAGER, STAFF),
        timezone="Europe/Vilnius",
        hours=hours,
    )
    buyer = Buyer(SITE, BuyerID("anna"), "Anna")
    store.buyers[buyer.buyer_id] = buyer
    chat = store.seed_conversation(conversation())
    homeserver = Homeserver()
    sites = {SITE: Site(SITE, "Shop", "en", has_webhook=False)}
    announcer = Announcer(sites, lambda site: None, lambda site, buyer: None)
    translations = Translations(None, DictCache(), None)
    now = [MONDAY]
    clock = lambda: now[0]  # noqa: E731
    auto = AutoReplies(store, homeserver, announcer, translations, clock=clock)
    answering = AnsweringRoles(frozenset({"owner", "manager"}))
    courier = Courier(
        store,
        homeserver,
        sites,
        answering,
        TaskKeeper(),
        announcer,
        translations,
        FakeMedia(),
        backoff=Backoff(first=0.0, longest=0.0),
        after_delivery=auto.post_notices,
    )
    times = ResponseTimes(store, courier.refresh_members, 24, clock=clock)
    archive = Archive(store, courier, announcer, 30, clock=clock)
    blocking = Blocking(store, homeserver, courier, announcer)
    desk = MarketplaceDesk(
        store,
        homeserver,
        courier,
        sites,
        announcer,
        answering,
        blocking,
        archive,
        lambda site, buyer_id: None,
        clock=clock,
        auto_replies=auto,
        response_times=times,
    )
    commands = SellerCommands(store, homeserver, blocking, room_commands=[times.command()])
    replies = SellerReplies(
        store,
        homeserver,
        answering,
        announcer,
        courier.refresh_members,
        archive,
        commands,
        translations,
        response_times=times,
    )
    return Shop(store, homeserver, courier, desk, replies, times, chat, buyer, now, sites)


# Working hours


def test_working_seconds_across_a_night_count_only_the_open_hours() -> None:
    # Monday 17:00 to Tuesday 10:00 in Vilnius: one hour on Monday, one on Tuesday.
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    end = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    assert VILNIUS_WEEKDAYS.working_seconds(start, end) == 2 * HOUR
    assert WorkingHours().working_seconds(start, end) == 17 * HOUR


def test_working_seconds_across_a_weekend_skip_it() -> None:
    # Friday 16:00 to Monday 11:00 in Vilnius: two hours on Friday, two on Monday.
    start = datetime(2026, 3, 6, 14, 0, tzinfo=UTC)
    end = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    assert VILNIUS_WEEKDAYS.working_seconds(start, end) == 4 * HOUR
    # All within a closed weekend: nothing; a backwards interval: nothing.
    saturday = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)
    assert VILNIUS_WEEKDAYS.working_seconds(saturday, saturday + timedelta(hours=20)) == 0
    assert VILNIUS_WEEKDAYS.working_seconds(end, start) == 0


def test_working_seconds_within_one_range_and_several() -> None:
    split = WorkingHours(
        "UTC", WeeklyHours.parse({"mon": [["09:00", "12:00"], ["13:00", "24:00"]]})
    )
    assert split.working_seconds(MONDAY + timedelta(minutes=30), MONDAY + timedelta(hours=1)) == (
        30 * 60
    )
    # 09:00 Monday to 09:00 Tuesday: 3 h before lunch, 11 h after, to midnight.
    assert split.working_seconds(MONDAY, MONDAY + timedelta(days=1)) == 14 * HOUR


# Waits


async def test_a_buyer_message_opens_one_wait_and_a_member_reply_closes_it() -> None:
    s = shop()
    assert await s.buyer_says("Is it in stock?")
    s.at(MONDAY + timedelta(minutes=10))
    assert await s.buyer_says("Hello?")
    assert len(s.store.waits) == 1
    wait = s.store.waits[0]
    assert (wait.opened_at, wait.first, wait.closing) == (MONDAY, True, None)
    assert s.homeserver.room(s.room_id).unanswered

    # Monday 11:00 in Vilnius to Tuesday 08:00, before the shop opens: 21 h waited.
    s.at(datetime(2026, 3, 3, 6, 0, tzinfo=UTC))
    await s.member_says("Yes, we have it", "$reply1")
    closing = s.store.waits[0].closing
    assert closing is not None
    assert (closing.outcome, closing.closed_by) == ("replied", OWNER.user_id)
    assert closing.wall_seconds == 21 * HOUR
    # Monday 11:00–18:00 local is open (7 h); Tuesday 08:00 local is before opening.
    assert closing.working_seconds == 7 * HOUR
    assert s.current.waiting_since is None
    assert not s.homeserver.room(s.room_id).unanswered

    # The next buyer message opens the conversation's second wait, not its first.
    s.at(datetime(2026, 3, 3, 9, 0, tzinfo=UTC))
    await s.buyer_says("Thanks! And in red?")
    assert [w.first for w in s.store.waits] == [True, False]
    assert s.homeserver.room(s.room_id).unanswered


async def test_repeats_open_and_close_nothing_twice() -> None:
    s = shop()
    await s.buyer_says("Is it in stock?", client_id="c1")
    assert not await s.buyer_says("Is it in stock?", client_id="c1")  # the widget's retry
    assert len(s.store.waits) == 1
    s.at(MONDAY + timedelta(hours=1))
    await s.member_says("Yes", "$reply1")
    s.at(MONDAY + timedelta(hours=2))
    await s.buyer_says("Great, and in red?", client_id="c2")
    # The homeserver sends the reply's transaction again (the bridge crashed after it).
    s.at(MONDAY + timedelta(hours=3))
    await s.member_says("Yes", "$reply1")
    assert [w.closing is None for w in s.store.waits] == [False, True]
    assert s.store.waits[0].closing is not None
    assert s.store.waits[0].closing.wall_seconds == HOUR


async def test_automatic_messages_leave_the_wait_open() -> None:
    s = shop(greeting="Hello {buyer}, we answer soon!", hours=None)
    await s.buyer_says("Is it in stock?")
    automatic = [m for m in s.store.messages.values() if m.automatic]
    assert [m.text for m in automatic] == ["Hello Anna, we answer soon!"]
    assert s.store.waits[0].closing is None
    assert s.homeserver.room(s.room_id).unanswered


async def test_a_staff_member_who_does_not_answer_closes_nothing() -> None:
    s = shop()
    await s.buyer_says("Is it in stock?")
    await s.member_says("I am not one who answers", "$staff", member=STAFF)
    assert s.store.waits[0].closing is None


async def test_noreply_closes_the_wait_without_counting_it() -> None:
    s = shop()
    await s.member_says("!noreply", "$n0")
    assert s.room_notices()[-1] == "Nothing waits for an answer here."

    await s.buyer_says("Thanks, that's all!")
    s.at(MONDAY + timedelta(minutes=5))
    await s.member_says("!noreply", "$n1", member=MANAGER)
    closing = s.store.waits[0].closing
    assert closing is not None
    assert (closing.outcome, closing.closed_by) == ("noreply", MANAGER.user_id)
    assert s.room_notices()[-1].startswith("No answer needed")
    assert not s.homeserver.room(s.room_id).unanswered
    # The command reached no buyer.
    assert not [m for m in s.store.messages.values() if m.sender == SenderKind.SELLER]


# Reminders


async def test_reminders_come_at_half_the_target_and_an_hour_before_it_once_each() -> None:
    s = shop()
    await s.buyer_says("Is it in stock?")
    clock = s.reminders()

    assert await clock.run_once(MONDAY + timedelta(hours=11, minutes=59)) == 0
    assert s.told() == []

    assert await clock.run_once(MONDAY + timedelta(hours=12)) == 1
    [notice] = s.told()
    assert "Anna about Product 1: waiting 12 h, 12 h left of the target" in notice
    assert f"https://matrix.to/#/{s.room_id}" in notice
    room = s.homeserver.room(s.room_id)
    assert room.mentioned == [[OWNER.user_id, MANAGER.user_id]]
    assert "the buyer has waited 12 h for an answer" in room.notices[-1]

    # Again, and after a restart (a new clock over the same store): nothing more.
    assert await clock.run_once(MONDAY + timedelta(hours=12, minutes=1)) == 0
    restarted = s.reminders()
    assert await restarted.run_once(MONDAY + timedelta(hours=22, minutes=59)) == 0
    assert len(s.told()) == 1

    assert await restarted.run_once(MONDAY + timedelta(hours=23)) == 1
    assert "1 h left of the target" in s.told()[-1]
    assert len(room.mentioned) == 2
    assert await restarted.run_once(MONDAY + timedelta(days=3)) == 0


async def test_a_reply_drops_the_reminders_still_to_come() -> None:
    s = shop()
    await s.buyer_says("Is it in stock?")
    s.at(MONDAY + timedelta(hours=1))
    await s.member_says("Yes", "$reply1")
    assert s.store.reminders == {}
    assert await s.reminders().run_once(MONDAY + timedelta(days=2)) == 0
    assert s.told() == []


async def test_one_notice_lists_every_waiting_conversation_of_the_seller() -> None:
    s = shop()
    await s.buyer_says("Is it in stock?")
    other = s.store.seed_conversation(conversation(2))
    await s.desk.post_buyer_message(other, s.buyer, "And this one?", "x1")
    await s.settled()
    # The bridge was down past both reminders: one line per conversation all the same.
    assert await s.reminders().run_once(MONDAY + timedelta(hours=30)) == 2
    [notice] = s.told()
    assert notice.startswith("⏰ 2 conversations wait for an answer (target 24 h):")
    assert "Product 1" in notice and "Product 2" in notice
    assert "the 24 h target has passed" in notice
    assert f"https://matrix.to/#/{other.room_id}" in notice


async def test_a_reminder_that_could_not_be_sent_comes_on_the_next_run() -> None:
    s = shop()
    await s.buyer_says("Is it in stock?")
    s.homeserver.tell_answers.append(HomeserverUnavailable("down"))
    clock = s.reminders()
    assert await clock.run_once(MONDAY + timedelta(hours=12)) == 0
    assert s.told() == []
    assert await clock.run_once(MONDAY + timedelta(hours=12, minutes=1)) == 1
    assert len(s.told()) == 1
