"""Automatic messages in the store: each mark is taken once even when asked at once, and
a notice is owed only behind buyer messages already delivered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.core.events import FeedFrame
from bridge.core.ids import EventID, MessageID, UserID, new_message_id
from bridge.core.models import Conversation, Message, MessageStatus, SenderKind
from bridge.core.seller_storage import AutomaticClaim
from bridge.store.database import create_engine, migrate, sessions
from bridge.store.repository import SqlRepository
from tests.store.test_repository import NOW, SITE, buyer_message, seeded


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def repository(engine: AsyncEngine) -> SqlRepository:
    return SqlRepository(sessions(engine))


def automatic(conversation: Conversation, text: str, minutes: int = 0) -> Message:
    return Message(
        message_id=new_message_id(),
        conversation_id=conversation.conversation_id,
        sender=SenderKind.SELLER,
        sender_name="Shop",
        text=text,
        lang="en",
        status=MessageStatus.SENT,
        created_at=NOW + timedelta(minutes=minutes),
        automatic=True,
    )


def frames_for(conversation: Conversation):  # type: ignore[no-untyped-def]
    def events(message: Message) -> list[FeedFrame]:
        return [
            FeedFrame(
                SITE,
                conversation.buyer_id,
                "message.created",
                conversation.conversation_id,
                {"message": {"text": message.text}},
            )
        ]

    return events


async def test_the_greeting_is_claimed_once_even_when_asked_at_once(
    repository: SqlRepository,
) -> None:
    chat = await seeded(repository)
    results = await asyncio.gather(
        *(
            repository.add_automatic_messages(
                [AutomaticClaim(automatic(chat, "Hi!"))], frames_for(chat)
            )
            for _ in range(5)
        )
    )
    assert sum(len(stored) for stored in results) == 1
    assert (await repository.auto_reply_marks(chat.conversation_id)).greeted
    texts = [
        m.text for m in await repository.list_messages(chat.conversation_id, after=None, limit=10)
    ]
    assert texts == ["Hi!"]
    frames = await repository.frames_since(SITE, chat.buyer_id, 0, 10)
    assert [f.payload["message"]["text"] for f in frames] == ["Hi!"]


async def test_the_away_reply_is_claimed_once_per_day_and_not_after_a_member_replied(
    repository: SqlRepository,
) -> None:
    chat = await seeded(repository)

    def away(day: str, minutes: int) -> AutomaticClaim:
        return AutomaticClaim(
            automatic(chat, f"Closed {day}", minutes),
            day,
            NOW + timedelta(minutes=minutes - 5),
        )

    assert (
        len(await repository.add_automatic_messages([away("2026-11-24", 0)], frames_for(chat))) == 1
    )
    assert await repository.add_automatic_messages([away("2026-11-24", 1)], frames_for(chat)) == []
    marks = await repository.auto_reply_marks(chat.conversation_id)
    assert marks.away_sent_on == "2026-11-24" and not marks.greeted

    reply = Message(
        message_id=MessageID("m-reply"),
        conversation_id=chat.conversation_id,
        sender=SenderKind.SELLER,
        sender_name="Owner",
        text="Here now",
        lang="en",
        status=MessageStatus.SENT,
        created_at=NOW + timedelta(hours=20),
        sender_user_id=UserID("@o:x"),
        event_id=EventID("$reply"),
    )
    await repository.add_message(reply, [])
    assert (
        await repository.auto_reply_marks(chat.conversation_id)
    ).last_member_reply_at == reply.created_at
    # The next day, but two minutes after the member's reply: no away reply.
    next_day = 20 * 60 + 2
    assert (
        await repository.add_automatic_messages([away("2026-11-25", next_day)], frames_for(chat))
        == []
    )
    assert (
        len(
            await repository.add_automatic_messages(
                [away("2026-11-25", next_day + 5)], frames_for(chat)
            )
        )
        == 1
    )


async def test_a_notice_is_owed_only_behind_delivered_buyer_messages(
    repository: SqlRepository,
) -> None:
    chat = await seeded(repository)
    first, _ = await repository.add_message(buyer_message(chat.conversation_id, "c1"), [])
    (greeting,) = await repository.add_automatic_messages(
        [AutomaticClaim(automatic(chat, "Hi!"))], frames_for(chat)
    )
    assert await repository.notices_owed(chat.conversation_id) == []
    assert [c.conversation_id for c in await repository.conversations_needing_delivery()] == [
        chat.conversation_id
    ]

    await repository.mark_delivered(first.message_id, EventID("$first"), lambda _: [])
    assert [m.message_id for m in await repository.notices_owed(chat.conversation_id)] == [
        greeting.message_id
    ]
    # Still owed after a restart: the conversation needs the courier.
    await repository.set_room(chat.conversation_id, chat.room_id or "!room:x")  # type: ignore[arg-type]
    assert [c.conversation_id for c in await repository.conversations_needing_delivery()] == [
        chat.conversation_id
    ]

    await repository.mark_notice_posted(greeting.message_id, EventID("$notice"))
    assert await repository.notices_owed(chat.conversation_id) == []
    assert await repository.conversations_needing_delivery() == []
    assert (await repository.message_by_event(EventID("$notice"))).automatic  # type: ignore[union-attr]
