"""The seller's automatic messages: the greeting on a conversation's first buyer message,
and the away reply outside working hours (once per conversation per seller day, not when a
member replied in the last five minutes).

Each is a seller message marked `automatic`, in the buyer's language, stored at once so the
buyer sees it right after their own words. The seller sees it as the bot's notice in the
room, and that notice must come after the buyer's message that caused it. Buyer messages
reach the room through the courier, later and with retries, so the notice is left to the
courier too: an automatic message whose notice is not yet in the room has no event id, and
after each round of deliveries the courier calls `post_notices`, which posts the notices of
those no pending buyer message is ahead of and records the notice's event id. The store is
the only memory: a restart finds the notices still owed (`conversations_needing_delivery`)
and a repeated post is keyed by the message id, so the homeserver drops it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bridge.core.events import Announcer
from bridge.core.ids import EventID, RoomID, new_message_id
from bridge.core.models import Buyer, Conversation, Message, MessageStatus, Seller, SenderKind
from bridge.core.placeholders import Filling
from bridge.core.ports import MatrixRejected
from bridge.core.seller_storage import AutomaticClaim, AutomaticReplies, AutoReplyMarks
from bridge.core.translation import Translations

logger = logging.getLogger(__name__)

# A member who replied this recently is in the conversation: no away reply then.
RECENT_REPLY = timedelta(minutes=5)


class NoticeBoard(Protocol):
    """The one thing automatic messages ask of Matrix (`matrix/rooms.py` implements it)."""

    async def send_tracked_notice(
        self, room_id: RoomID, text: str, key: str | None = None
    ) -> EventID:
        """The bot's notice in a room, its event id returned; the same `key` is said once
        while the homeserver remembers the transaction."""


@dataclass(frozen=True)
class Due:
    """Which automatic messages a new buyer message calls for; `away_day` is the seller's
    day the away reply is for (None: no away reply)."""

    greeting: bool
    away_day: str | None

    def __bool__(self) -> bool:
        return self.greeting or self.away_day is not None


def answers_automatically(seller: Seller) -> bool:
    """Whether the seller has a greeting or an away reply at all."""
    greeting = bool(seller.greeting and seller.greeting.strip())
    away = bool(seller.away_message and seller.away_message.strip() and seller.hours is not None)
    return greeting or away


def due(seller: Seller, marks: AutoReplyMarks, now: datetime) -> Due:
    """The one rule of when the bridge answers for the seller."""
    greeting = bool(seller.greeting and seller.greeting.strip()) and not marks.greeted
    hours = seller.working_hours
    away_day = None
    if (
        seller.away_message
        and seller.away_message.strip()
        and seller.hours is not None
        and not hours.is_open(now)
        and marks.away_sent_on != hours.local_day(now)
        and (marks.last_member_reply_at is None or marks.last_member_reply_at < now - RECENT_REPLY)
    ):
        away_day = hours.local_day(now)
    return Due(greeting, away_day)


# The client id of an automatic message says which one it is: one greeting per
# conversation, one away reply per seller day (the store's unique client id holds to it).
GREETING_ID = "auto:greeting"
AWAY_ID = "auto:away:{day}"


def notice_text(message: Message) -> str:
    """What the room is told of an automatic message: which one, and the words as the buyer
    got them (and as written, when translated)."""
    kind = message.client_id or ""
    if kind == GREETING_ID:
        label = "Greeting sent to the buyer"
    elif kind.startswith(AWAY_ID.partition("{")[0]):
        label = "Away reply sent to the buyer"
    else:
        label = "Automatic reply sent to the buyer"
    text = f"{label}: {message.text}"
    if message.original is not None:
        text += f"\n(as written: {message.original.text})"
    return text


class AutoReplies:
    def __init__(
        self,
        store: AutomaticReplies,
        matrix: NoticeBoard,
        announcer: Announcer,
        translations: Translations,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._matrix = matrix
        self._announcer = announcer
        self._translations = translations
        self._clock = clock

    async def answer(
        self, conversation: Conversation, seller: Seller | None, buyer: Buyer, said: Message
    ) -> list[Message]:
        """Store what a buyer's new message calls for, with the seller as the caller read it
        (the caller wakes the courier and the deliverers when the list is not empty)."""
        if seller is None or not answers_automatically(seller):
            return []  # most sellers: no further reads on a buyer's message
        now = self._clock()
        marks = await self._store.auto_reply_marks(conversation.conversation_id)
        wanted = due(seller, marks, now)
        if not wanted:
            return []
        filling = Filling.of(conversation, seller, buyer)
        reader = buyer.language or said.lang
        claims = []
        if wanted.greeting and seller.greeting:
            greeting = await self._message(
                conversation, seller, filling, seller.greeting, reader, GREETING_ID
            )
            claims.append(AutomaticClaim(greeting))
        if wanted.away_day is not None and seller.away_message:
            away = await self._message(
                conversation,
                seller,
                filling,
                seller.away_message,
                reader,
                AWAY_ID.format(day=wanted.away_day),
            )
            claims.append(AutomaticClaim(away, wanted.away_day, now - RECENT_REPLY))
        stored = await self._store.add_automatic_messages(
            claims, lambda message: self._announcer.message_created(conversation, message)
        )
        return stored

    async def _message(
        self,
        conversation: Conversation,
        seller: Seller,
        filling: Filling,
        words: str,
        reader: str | None,
        client_id: str,
    ) -> Message:
        text = filling.fill(words)
        if self._translations.enabled and conversation.translation_enabled:
            rendering = await self._translations.render(text, seller.language, reader)
        else:
            rendering = None
        return Message(
            message_id=new_message_id(),
            conversation_id=conversation.conversation_id,
            sender=SenderKind.SELLER,
            sender_name=seller.name,
            text=rendering.text if rendering else text,
            lang=seller.language,
            status=MessageStatus.SENT,
            created_at=self._clock(),
            original=rendering.original if rendering else None,
            translation=rendering.note if rendering else None,
            client_id=client_id,
            automatic=True,
        )

    async def post_notices(self, conversation: Conversation) -> None:
        """Tell the room of the automatic messages it has not heard of, once every buyer
        message before them is delivered (the courier calls this after its deliveries; a
        HomeserverUnavailable goes back to the courier, which retries)."""
        conversation_id = conversation.conversation_id
        if conversation.room_id is None:
            return
        for message in await self._store.notices_owed(conversation_id):
            try:
                event_id = await self._matrix.send_tracked_notice(
                    conversation.room_id,
                    notice_text(message),
                    key=f"automatic-{message.message_id}",
                )
            except MatrixRejected as error:
                # Kept owed (and in order): the next delivery to this room tries again.
                logger.warning(
                    "The notice of %s was refused in %s: %s",
                    message.message_id,
                    conversation.room_id,
                    error,
                )
                return
            await self._store.mark_notice_posted(message.message_id, event_id)
