"""In-memory stand-ins for the ports the core services take, holding only the methods the
services call. They keep what a user would look at afterwards: a message's status and
error, the room's timeline, the notices the bot said, the buyer's feed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from bridge.core.delivery import Backoff, Courier
from bridge.core.events import Announcer, Event, EventsFor, FeedFrame
from bridge.core.ids import (
    BuyerID,
    ConversationID,
    EventID,
    MessageID,
    RoomID,
    SellerID,
    SiteID,
    UserID,
)
from bridge.core.models import (
    Attachment,
    Buyer,
    Context,
    ContextType,
    Conversation,
    ConversationState,
    Member,
    Message,
    MessageStatus,
    Original,
    Seller,
    SenderKind,
    Side,
    Site,
    TranslationNote,
)
from bridge.core.ports import TranslationUnavailable
from bridge.core.tasks import TaskKeeper
from bridge.core.team import AnsweringRoles
from bridge.core.translation import Translations

SITE = SiteID("shop")
OWNER = Member(UserID("@owner:hs"), "owner")
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeStore:
    """The store's ports (core/storage.py) in memory, each under its port's name; only the
    methods the services under test call."""

    def __init__(self) -> None:
        self.sellers: dict[SellerID, Seller] = {}
        self.buyers: dict[BuyerID, Buyer] = {}
        self.conversations: dict[ConversationID, Conversation] = {}
        # Stored order: a dict keeps insertion order.
        self.messages: dict[MessageID, Message] = {}
        self.pair_blocks: dict[tuple[SellerID, BuyerID], frozenset[Side]] = {}
        self.stale_members: set[ConversationID] = set()
        self.feed: list[Event] = []

    # What a test sets up.
    def seed_conversation(self, conversation: Conversation) -> Conversation:
        self.conversations[conversation.conversation_id] = conversation
        return conversation

    def seed_message(self, message: Message) -> Message:
        self.messages[message.message_id] = message
        return message

    def _keep(self, message: Message, events: EventsFor) -> Message:
        self.messages[message.message_id] = message
        self.feed.extend(events(message))
        return message

    # Parties.
    async def get_seller(self, site: SiteID, seller_id: SellerID) -> Seller | None:
        return self.sellers.get(seller_id)

    async def get_buyer(self, site: SiteID, buyer_id: BuyerID) -> Buyer | None:
        return self.buyers.get(buyer_id)

    # ConversationRecords.
    async def get_conversation_by_id(self, conversation_id: ConversationID) -> Conversation | None:
        return self.conversations.get(conversation_id)

    async def set_room(self, conversation_id: ConversationID, room_id: RoomID) -> None:
        self.conversations[conversation_id] = replace(
            self.conversations[conversation_id], room_id=room_id
        )

    async def set_translation_enabled(self, conversation_id: ConversationID, enabled: bool) -> None:
        self.conversations[conversation_id] = replace(
            self.conversations[conversation_id], translation_enabled=enabled
        )

    # ConversationTags.
    async def set_labels(
        self,
        conversation_id: ConversationID,
        labels: Sequence[str],
        events_for: Callable[[Conversation], Sequence[Event]],
    ) -> Conversation | None:
        return self._mark(conversation_id, events_for, labels=tuple(sorted(labels)))

    async def set_assignee(
        self,
        conversation_id: ConversationID,
        assignee: UserID | None,
        events_for: Callable[[Conversation], Sequence[Event]],
    ) -> Conversation | None:
        return self._mark(conversation_id, events_for, assignee=assignee)

    def _mark(
        self,
        conversation_id: ConversationID,
        events_for: Callable[[Conversation], Sequence[Event]],
        **changes: object,
    ) -> Conversation | None:
        if conversation_id not in self.conversations:
            return None
        changed = replace(self.conversations[conversation_id], **changes)  # type: ignore[arg-type]
        self.conversations[conversation_id] = changed
        self.feed.extend(events_for(changed))
        return changed

    # FeedWriter.
    async def add_frames(self, frames: Sequence[Event]) -> None:
        self.feed.extend(frames)

    async def list_conversations(
        self,
        site: SiteID,
        *,
        seller_id: SellerID | None = None,
        buyer_id: BuyerID | None = None,
        state: ConversationState | None = None,
    ) -> list[Conversation]:
        return [
            c
            for c in self.conversations.values()
            if c.site == site
            and seller_id in (None, c.seller_id)
            and buyer_id in (None, c.buyer_id)
            and state in (None, c.state)
        ]

    # RoomUpkeep.
    async def conversations_needing_delivery(self) -> list[Conversation]:
        waiting = {
            m.conversation_id for m in self.messages.values() if m.status == MessageStatus.PENDING
        }
        return [
            c
            for c in self.conversations.values()
            if c.room_id is None or c.conversation_id in waiting
        ]

    async def conversations_with_stale_members(self) -> list[ConversationID]:
        return sorted(self.stale_members)

    async def mark_members_stale(
        self, conversation_ids: Sequence[ConversationID], stale: bool
    ) -> None:
        for conversation_id in conversation_ids:
            if stale:
                self.stale_members.add(conversation_id)
            else:
                self.stale_members.discard(conversation_id)

    # ConversationStates.
    async def idle_conversations(self, quiet_since: datetime) -> list[ConversationID]:
        return [
            c.conversation_id
            for c in self.conversations.values()
            if (c.last_message_at or c.created_at) < quiet_since
        ]

    async def set_state(
        self,
        conversation_ids: Sequence[ConversationID],
        state: ConversationState,
        events_for: Callable[[Conversation], Sequence[Event]],
        *,
        only_from: ConversationState,
    ) -> list[Conversation]:
        changed = []
        for conversation_id in conversation_ids:
            if self.conversations[conversation_id].state != only_from:
                continue
            conversation = replace(self.conversations[conversation_id], state=state)
            self.conversations[conversation_id] = conversation
            self.feed.extend(events_for(conversation))
            changed.append(conversation)
        return changed

    # Blocks.
    async def blocks(self, site: SiteID, seller_id: SellerID, buyer_id: BuyerID) -> frozenset[Side]:
        return self.pair_blocks.get((seller_id, buyer_id), frozenset())

    async def set_block(
        self,
        site: SiteID,
        seller_id: SellerID,
        buyer_id: BuyerID,
        side: Side,
        blocked: bool,
        events_for: Callable[[Conversation], Sequence[Event]],
    ) -> list[Conversation]:
        before = await self.blocks(site, seller_id, buyer_id)
        after = before | {side} if blocked else before - {side}
        if after == before:
            return []
        self.pair_blocks[(seller_id, buyer_id)] = after
        changed = []
        state = ConversationState.BLOCKED if after else ConversationState.ACTIVE
        for stored in list(self.conversations.values()):
            if (stored.seller_id, stored.buyer_id) != (seller_id, buyer_id):
                continue
            conversation = replace(stored, blocked_by=after, state=state)
            self.conversations[conversation.conversation_id] = conversation
            self.feed.extend(events_for(conversation))
            changed.append(conversation)
        return changed

    # MessageRecords.
    async def message_by_event(self, event_id: EventID) -> Message | None:
        return next((m for m in self.messages.values() if m.event_id == event_id), None)

    async def list_messages_before(
        self, conversation_id: ConversationID, *, before: MessageID | None, limit: int
    ) -> list[Message]:
        return [m for m in self.messages.values() if m.conversation_id == conversation_id][-limit:]

    # MessageDelivery.
    async def pending_messages(self, conversation_id: ConversationID) -> list[Message]:
        return [
            m
            for m in self.messages.values()
            if m.conversation_id == conversation_id and m.status == MessageStatus.PENDING
        ]

    async def mark_delivered(
        self, message_id: MessageID, event_id: EventID, events: EventsFor
    ) -> Message:
        message = replace(self.messages[message_id], status=MessageStatus.SENT, event_id=event_id)
        return self._keep(message, events)

    async def mark_failed(self, message_id: MessageID, error: str, events: EventsFor) -> Message:
        message = replace(self.messages[message_id], status=MessageStatus.FAILED, error=error)
        return self._keep(message, events)

    async def set_attachments(
        self, message_id: MessageID, attachments: Sequence[Attachment]
    ) -> Message:
        message = replace(self.messages[message_id], attachments=tuple(attachments))
        self.messages[message_id] = message
        return message

    async def set_rendering(
        self,
        message_id: MessageID,
        text: str,
        original: Original | None,
        note: TranslationNote | None,
        events: EventsFor,
    ) -> Message:
        message = replace(self.messages[message_id], text=text, original=original, translation=note)
        return self._keep(message, events)


@dataclass
class Room:
    """A room as its members would see it."""

    timeline: list[tuple[MessageID, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    # What the last sync of members and power levels set: who blocks, which state.
    blocked_by: frozenset[Side] = frozenset()
    state: ConversationState | None = None
    # The labels and assignee the last sync put in the room's state.
    labels: tuple[str, ...] = ()
    assignee: UserID | None = None
    # Whom each mentioning notice (also in `notices`) mentioned.
    mentioned: list[list[UserID]] = field(default_factory=list)
    # Whether the last sync put the room in the Space's Unanswered section.
    unanswered: bool = False


class FakeHomeserver:
    """MatrixPort's methods the services call, over rooms kept in memory.

    `send_answers` is a script for the sends to come: None answers as usual, an exception
    is raised instead of answering, and ("carried out", exception) lands in the room but
    raises all the same, as a send whose answer was lost. `room_answers` and
    `notice_answers` are exceptions for the next room creations and notices."""

    def __init__(self) -> None:
        self.rooms: dict[RoomID, Room] = {}
        self.send_answers: list[Exception | tuple[str, Exception] | None] = []
        self.room_answers: list[Exception] = []
        self.notice_answers: list[Exception] = []
        self.uploads: list[bytes] = []
        self.display_names: dict[UserID, str] = {}
        # What the bot said in each seller's management room (`tell_seller`), by seller.
        self.told: dict[SellerID, list[str]] = {}
        self.tell_answers: list[Exception] = []

    def room(self, room_id: RoomID | None) -> Room:
        assert room_id is not None
        return self.rooms.setdefault(room_id, Room())

    def _post(self, conversation: Conversation, message: Message) -> EventID:
        timeline = self.room(conversation.room_id).timeline
        timeline.append((message.message_id, message.text))
        return EventID(f"$event{len(timeline)}")

    async def create_conversation_room(
        self,
        conversation: Conversation,
        seller: Seller,
        buyer: Buyer,
        members: Sequence[Member],
        site_name: str,
    ) -> RoomID:
        if self.room_answers:
            raise self.room_answers.pop(0)
        room_id = RoomID(f"!{conversation.conversation_id}:hs")
        self.room(room_id)
        return room_id

    async def send_buyer_message(
        self, conversation: Conversation, buyer: Buyer, message: Message
    ) -> EventID:
        if self.send_answers:
            answer = self.send_answers.pop(0)
            if answer is None:
                return self._post(conversation, message)
            if isinstance(answer, tuple):  # carried out, answer lost
                self._post(conversation, message)
                raise answer[1]
            raise answer
        return self._post(conversation, message)

    async def find_buyer_messages(
        self,
        conversation: Conversation,
        buyer: Buyer,
        message_ids: Collection[MessageID],
        since: datetime,
    ) -> dict[MessageID, EventID]:
        timeline = self.room(conversation.room_id).timeline
        return {
            message_id: EventID(f"$event{index + 1}")
            for index, (message_id, _) in enumerate(timeline)
            if message_id in message_ids
        }

    async def upload_as_buyer(self, buyer: Buyer, data: bytes, content_type: str, name: str) -> str:
        self.uploads.append(data)
        return f"mxc://hs/{len(self.uploads)}"

    async def update_context(self, conversation: Conversation, buyer: Buyer) -> None:
        return None

    async def sync_members(
        self,
        conversation: Conversation,
        seller: Seller,
        buyer: Buyer,
        members: Sequence[Member],
        site_name: str,
    ) -> None:
        room = self.room(conversation.room_id)
        room.blocked_by = conversation.blocked_by
        room.state = conversation.state
        room.labels = conversation.labels
        room.assignee = conversation.assignee
        room.unanswered = conversation.waiting_since is not None

    async def send_notice(self, room_id: RoomID, text: str, key: str | None = None) -> None:
        if self.notice_answers:
            raise self.notice_answers.pop(0)
        self.room(room_id).notices.append(text)

    async def send_notice_mentioning(
        self, room_id: RoomID, text: str, user_ids: Sequence[UserID]
    ) -> None:
        self.room(room_id).notices.append(text)
        self.room(room_id).mentioned.append(list(user_ids))

    async def tell_seller(
        self,
        seller: Seller,
        members: Sequence[Member],
        site_name: str,
        text: str,
        key: str | None = None,
    ) -> None:
        if self.tell_answers:
            raise self.tell_answers.pop(0)
        self.told.setdefault(seller.seller_id, []).append(text)

    async def display_name(self, user_id: UserID) -> str | None:
        return self.display_names.get(user_id)


class FakeMedia:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def read(self, sha256: str) -> bytes | None:
        return self.files.get(sha256)


class DictCache:
    def __init__(self) -> None:
        self.kept: dict[tuple[str, str, str, str], str] = {}

    async def cached_translation(
        self, provider: str, source: str, target: str, text: str
    ) -> str | None:
        return self.kept.get((provider, source, target, text))

    async def keep_translation(
        self, provider: str, source: str, target: str, text: str, translated: str
    ) -> None:
        self.kept[(provider, source, target, text)] = translated


class ScriptedProvider:
    """A provider that prefixes the target language, or fails while `down` is set."""

    name = "scripted"

    def __init__(self) -> None:
        self.down = False

    async def translate(self, text: str, source: str, target: str) -> str:
        if self.down:
            raise TranslationUnavailable("provider is down")
        return f"[{target}] {text}"


def conversation(
    number: int = 1,
    *,
    room: bool = True,
    buyer_id: str = "anna",
    last_message_at: datetime | None = None,
    state: ConversationState = ConversationState.ACTIVE,
) -> Conversation:
    conversation_id = ConversationID(f"c{number}")
    return Conversation(
        site=SITE,
        conversation_id=conversation_id,
        seller_id=SellerID("acme"),
        buyer_id=BuyerID(buyer_id),
        context=Context(ContextType.PRODUCT, f"p{number}", f"Product {number}"),
        state=state,
        room_id=RoomID(f"!{conversation_id}:hs") if room else None,
        created_at=START,
        last_message_at=last_message_at,
    )


def buyer_message(
    of: Conversation,
    text: str,
    *,
    sender: SenderKind = SenderKind.BUYER,
    original: Original | None = None,
    translation: TranslationNote | None = None,
    event_id: str | None = None,
    status: MessageStatus = MessageStatus.PENDING,
) -> Message:
    return Message(
        message_id=MessageID(f"m-{of.conversation_id}-{text}"),
        conversation_id=of.conversation_id,
        sender=sender,
        sender_name="Anna",
        text=text,
        lang="en",
        status=status,
        created_at=START,
        original=original,
        translation=translation,
        event_id=EventID(event_id) if event_id else None,
    )


@dataclass
class World:
    """The core services wired over the fakes, as `app.py` wires them over the adapters."""

    store: FakeStore
    homeserver: FakeHomeserver
    courier: Courier
    announcer: Announcer
    tasks: TaskKeeper
    media: FakeMedia

    def stored(self, message: Message) -> Message:
        return self.store.messages[message.message_id]

    def frames(self, kind: str) -> list[FeedFrame]:
        return [f for f in self.store.feed if isinstance(f, FeedFrame) and f.type == kind]

    async def settled(self) -> None:
        """Wait until the courier has nothing left to do (its backoff here is zero)."""
        for _ in range(10_000):
            if not self.courier.busy:
                return
            await asyncio.sleep(0)
        raise AssertionError("the courier never settled")


def world(translations: Translations | None = None) -> World:
    store = FakeStore()
    store.sellers[SellerID("acme")] = Seller(SITE, SellerID("acme"), "ACME", "en", members=(OWNER,))
    for buyer_id in ("anna", "boris"):
        store.buyers[BuyerID(buyer_id)] = Buyer(SITE, BuyerID(buyer_id), buyer_id.title())
    homeserver = FakeHomeserver()
    sites = {SITE: Site(SITE, "Shop", "en", has_webhook=False)}
    announcer = Announcer(sites, lambda site: None, lambda site, buyer: None)
    tasks = TaskKeeper()
    media = FakeMedia()
    courier = Courier(
        store,
        homeserver,
        sites,
        AnsweringRoles(frozenset({"owner", "manager"})),
        tasks,
        announcer,
        translations or Translations(None, DictCache(), None),
        media,
        backoff=Backoff(first=0.0, longest=0.0),
    )
    return World(store, homeserver, courier, announcer, tasks, media)


def days(count: float) -> timedelta:
    return timedelta(days=count)
