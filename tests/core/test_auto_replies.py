"""The greeting and away replies, as the buyer's widget and the seller's room see them: the
greeting once, the away reply once per seller day and not after a member's recent reply,
filled and translated, each notice in the room after the buyer message that caused it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from bridge.core.archive import Archive
from bridge.core.auto_replies import AutoReplies
from bridge.core.blocking import Blocking
from bridge.core.delivery import Backoff, Courier
from bridge.core.events import Announcer, Event, EventsFor, FeedFrame, WebhookEvent
from bridge.core.hours import WeeklyHours
from bridge.core.ids import BuyerID, ConversationID, EventID, MessageID, RoomID, SellerID, SiteID
from bridge.core.marketplace_desk import MarketplaceDesk
from bridge.core.models import (
    Buyer,
    Conversation,
    Message,
    MessageStatus,
    Seller,
    SenderKind,
    Site,
)
from bridge.core.ports import HomeserverUnavailable
from bridge.core.seller_storage import AutomaticClaim, AutoReplyMarks
from bridge.core.tasks import TaskKeeper
from bridge.core.team import AnsweringRoles
from bridge.core.translation import Translations
from tests.core.fakes import (
    OWNER,
    SITE,
    DictCache,
    FakeHomeserver,
    FakeMedia,
    FakeStore,
    ScriptedProvider,
    conversation,
)

# Sunday 1 March 2026, 10:00 in Vilnius (UTC+2 in winter); the shop opens on weekdays.
SUNDAY = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
WEEKDAYS = WeeklyHours.parse(
    {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
)
UNREACHABLE = HomeserverUnavailable("connection refused", maybe_done=False)


class AutoStore(FakeStore):
    """The fake store with what the desk and automatic messages need besides."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: dict[ConversationID, AutoReplyMarks] = {}

    async def get_conversation(
        self, site: SiteID, conversation_id: ConversationID
    ) -> Conversation | None:
        return self.conversations.get(conversation_id)

    async def add_message(
        self,
        message: Message,
        events: Sequence[Event],
        *,
        wait: object = None,
        notices: Sequence[Message] = (),
    ) -> tuple[Message, bool]:
        for stored in self.messages.values():
            if stored.client_id is not None and (stored.conversation_id, stored.client_id) == (
                message.conversation_id,
                message.client_id,
            ):
                return stored, False
        self.messages[message.message_id] = message
        self.feed.extend(events)
        return message, True

    async def add_frames(self, frames: Sequence[Event]) -> None:
        self.feed.extend(frames)

    async def auto_reply_marks(self, conversation_id: ConversationID) -> AutoReplyMarks:
        replies = [
            m.created_at
            for m in self.messages.values()
            if m.conversation_id == conversation_id
            and m.sender == SenderKind.SELLER
            and not m.automatic
        ]
        marks = self.marks.get(conversation_id, AutoReplyMarks())
        return replace(marks, last_member_reply_at=max(replies, default=None))

    async def add_automatic_messages(
        self, claims: Sequence[AutomaticClaim], events: EventsFor
    ) -> list[Message]:
        stored = []
        for claim in claims:
            conversation_id = claim.message.conversation_id
            marks = await self.auto_reply_marks(conversation_id)
            if claim.away_day is None:
                if marks.greeted:
                    continue
                marks = replace(marks, greeted=True)
            else:
                replied = marks.last_member_reply_at
                if marks.away_sent_on == claim.away_day or (
                    claim.quiet_since is not None
                    and replied is not None
                    and replied >= claim.quiet_since
                ):
                    continue
                marks = replace(marks, away_sent_on=claim.away_day)
            self.marks[conversation_id] = marks
            self._keep(claim.message, events)
            stored.append(claim.message)
        return stored

    async def notices_owed(self, conversation_id: ConversationID) -> list[Message]:
        owed = []
        for message in self.messages.values():
            if message.conversation_id != conversation_id:
                continue
            if message.status == MessageStatus.PENDING:
                break  # nothing behind a buyer message still on its way
            if message.automatic and message.event_id is None:
                owed.append(message)
        return owed

    async def mark_notice_posted(self, message_id: MessageID, event_id: EventID) -> None:
        self.messages[message_id] = replace(self.messages[message_id], event_id=event_id)


class Homeserver(FakeHomeserver):
    """Rooms that keep buyer messages and the bot's notices in one timeline, as a member's
    client shows them."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[RoomID, list[str]] = {}

    def _post(self, conversation: Conversation, message: Message) -> EventID:
        assert conversation.room_id is not None
        self.seen.setdefault(conversation.room_id, []).append(f"buyer: {message.text}")
        return super()._post(conversation, message)

    async def send_tracked_notice(
        self, room_id: RoomID, text: str, key: str | None = None
    ) -> EventID:
        await self.send_notice(room_id, text, key)
        self.seen.setdefault(room_id, []).append(f"notice: {text}")
        return EventID(f"$notice-{len(self.seen[room_id])}")


@dataclass
class Shop:
    store: AutoStore
    homeserver: Homeserver
    courier: Courier
    desk: MarketplaceDesk
    chat: Conversation
    buyer: Buyer
    now: list[datetime] = field(default_factory=lambda: [SUNDAY])

    def at(self, moment: datetime) -> None:
        self.now[0] = moment

    async def say(self, text: str, client_id: str | None = None) -> bool:
        _, created = await self.desk.post_buyer_message(
            self.chat, self.buyer, text, client_id or text
        )
        await self.settled()
        return created

    async def settled(self) -> None:
        for _ in range(10_000):
            if not self.courier.busy:
                return
            await asyncio.sleep(0)
        raise AssertionError("the courier never settled")

    def widget(self) -> list[tuple[str, str, bool]]:
        """What the buyer's widget got: sender, text and whether automatic, in order."""
        return [
            (m["sender"], m["text"], m["automatic"])
            for frame in self.store.feed
            if isinstance(frame, FeedFrame) and frame.type == "message.created"
            for m in [frame.payload["message"]]
        ]

    def webhooks(self) -> list[dict[str, object]]:
        return [
            e.payload["message"]
            for e in self.store.feed
            if isinstance(e, WebhookEvent) and e.type == "message.created"
        ]

    def room(self) -> list[str]:
        assert self.chat.room_id is not None
        return self.homeserver.seen.get(self.chat.room_id, [])

    def automatic(self) -> list[str]:
        return [text for sender, text, automatic in self.widget() if automatic]


def shop(
    *,
    greeting: str | None = None,
    away: str | None = None,
    hours: WeeklyHours | None = WEEKDAYS,
    language: str | None = None,
    translated: bool = False,
) -> Shop:
    store = AutoStore()
    store.sellers[SellerID("acme")] = Seller(
        SITE,
        SellerID("acme"),
        "ACME",
        "en",
        greeting=greeting,
        members=(OWNER,),
        timezone="Europe/Vilnius",
        hours=hours,
        away_message=away,
    )
    buyer = Buyer(SITE, BuyerID("anna"), "Anna", language=language)
    store.buyers[buyer.buyer_id] = buyer
    chat = store.seed_conversation(conversation())
    homeserver = Homeserver()
    sites = {SITE: Site(SITE, "Shop", "en", has_webhook=True)}
    announcer = Announcer(sites, lambda site: None, lambda site, buyer: None)
    translations = Translations(ScriptedProvider() if translated else None, DictCache(), None)
    now = [SUNDAY]
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
    desk = MarketplaceDesk(
        store,
        homeserver,
        courier,
        sites,
        announcer,
        answering,
        Blocking(store, homeserver, courier, announcer),
        Archive(store, courier, announcer, 30, clock=clock),
        lambda site, buyer_id: None,
        clock=clock,
        auto_replies=auto,
    )
    return Shop(store, homeserver, courier, desk, chat, buyer, now)


def member_reply(s: Shop, at: datetime) -> None:
    s.store.seed_message(
        Message(
            message_id=MessageID(f"reply-{at.isoformat()}"),
            conversation_id=s.chat.conversation_id,
            sender=SenderKind.SELLER,
            sender_name="Owner",
            text="On it",
            lang="en",
            status=MessageStatus.SENT,
            created_at=at,
        )
    )


async def test_the_greeting_comes_once_and_the_room_sees_it_after_the_buyer() -> None:
    s = shop(greeting="Hello {buyer}, thanks for asking about {title}!", hours=None)

    await s.say("Is it in stock?")
    await s.say("And in red?")

    greeting = "Hello Anna, thanks for asking about Product 1!"
    assert s.widget() == [
        ("buyer", "Is it in stock?", False),
        ("seller", greeting, True),
        ("buyer", "And in red?", False),
    ]
    assert s.room() == [
        "buyer: Is it in stock?",
        f"notice: Greeting sent to the buyer: {greeting}",
        "buyer: And in red?",
    ]
    hooks = s.webhooks()
    assert [(h["sender"], h["automatic"], h["sender_name"]) for h in hooks][1] == (
        "seller",
        True,
        "ACME",
    )


async def test_outside_hours_the_greeting_comes_first_then_the_away_reply() -> None:
    s = shop(greeting="Hi!", away="We are closed, back on Monday.")

    await s.say("Hello?")

    assert s.automatic() == ["Hi!", "We are closed, back on Monday."]
    assert s.room() == [
        "buyer: Hello?",
        "notice: Greeting sent to the buyer: Hi!",
        "notice: Away reply sent to the buyer: We are closed, back on Monday.",
    ]


async def test_the_away_reply_comes_once_per_seller_day_and_again_the_next() -> None:
    s = shop(away="Closed now.")
    await s.say("one")  # Sunday 10:00 in Vilnius
    s.at(SUNDAY + timedelta(hours=12))  # Sunday 22:00 there
    await s.say("two")
    assert s.automatic() == ["Closed now."]

    # 22:30 UTC is still Sunday in UTC but already Monday 00:30 in Vilnius: a new day.
    s.at(SUNDAY + timedelta(hours=14, minutes=30))
    await s.say("three")
    assert s.automatic() == ["Closed now.", "Closed now."]
    assert [line for line in s.room() if line.startswith("notice")] == [
        "notice: Away reply sent to the buyer: Closed now."
    ] * 2


async def test_no_away_reply_inside_hours() -> None:
    s = shop(away="Closed now.")
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))  # Monday 10:00 in Vilnius
    await s.say("hello")
    assert s.automatic() == []
    assert s.room() == ["buyer: hello"]


async def test_no_away_reply_when_a_member_replied_in_the_last_five_minutes() -> None:
    s = shop(away="Closed now.")
    member_reply(s, SUNDAY - timedelta(minutes=4))
    await s.say("thanks")
    assert s.automatic() == []

    # Once the member has been quiet for longer, the away reply comes.
    s.at(SUNDAY + timedelta(minutes=2))
    await s.say("still there?")
    assert s.automatic() == ["Closed now."]


async def test_the_automatic_messages_are_filled_and_translated_for_the_buyer() -> None:
    s = shop(
        greeting="Hello {buyer} from {seller}{unknown}",
        away="Back soon, {buyer}.",
        language="lt",
        translated=True,
    )

    await s.say("Labas")

    assert s.automatic() == ["[lt] Hello Anna from ACME", "[lt] Back soon, Anna."]
    greeting = next(m for m in s.store.messages.values() if m.automatic)
    assert greeting.original is not None and greeting.original.text == "Hello Anna from ACME"
    assert s.room()[1:] == [
        "notice: Greeting sent to the buyer: [lt] Hello Anna from ACME"
        "\n(as written: Hello Anna from ACME)",
        "notice: Away reply sent to the buyer: [lt] Back soon, Anna."
        "\n(as written: Back soon, Anna.)",
    ]


async def test_a_repeat_by_client_id_triggers_nothing() -> None:
    s = shop(away="Closed now.")
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))  # Monday, open
    assert await s.say("hello", client_id="c-1")
    s.at(datetime(2026, 3, 2, 17, 0, tzinfo=UTC))  # Monday 19:00 there: closed

    assert not await s.say("hello", client_id="c-1")
    assert s.automatic() == []

    assert await s.say("anyone?", client_id="c-2")
    assert s.automatic() == ["Closed now."]


async def test_the_notice_waits_for_a_buyer_message_that_is_slow_to_reach_the_room() -> None:
    s = shop(greeting="Hi!", hours=None)
    s.homeserver.send_answers = [UNREACHABLE, UNREACHABLE]

    await s.say("first")

    assert s.room() == ["buyer: first", "notice: Greeting sent to the buyer: Hi!"]
    assert s.widget()[1] == ("seller", "Hi!", True)


async def test_a_seller_without_a_greeting_or_hours_sends_nothing() -> None:
    s = shop(away="Closed now.", hours=None)
    await s.say("hello")
    assert s.automatic() == []
    assert s.room() == ["buyer: hello"]
