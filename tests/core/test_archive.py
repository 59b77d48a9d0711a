"""The archive clock: quiet conversations are archived, a new message wakes them up."""

from __future__ import annotations

from datetime import datetime

from bridge.core.archive import Archive
from bridge.core.models import ConversationState
from tests.core.fakes import START, World, conversation, days, world


def archive_world(now: datetime) -> tuple[World, Archive]:
    w = world()
    return w, Archive(w.store, w.courier, w.announcer, after_days=30, clock=lambda: now)


def state_of(w: World, number: int) -> ConversationState:
    return w.store.conversations[conversation(number).conversation_id].state


async def test_only_what_was_quiet_longer_than_the_limit_is_archived() -> None:
    w, archive = archive_world(START + days(40))
    w.store.seed_conversation(conversation(1, last_message_at=START))  # 40 days quiet
    w.store.seed_conversation(conversation(2, last_message_at=START + days(11)))  # 29 days

    archived = await archive.sweep()
    await w.settled()

    assert [c.conversation_id for c in archived] == ["c1"]
    assert (state_of(w, 1), state_of(w, 2)) == (
        ConversationState.ARCHIVED,
        ConversationState.ACTIVE,
    )
    assert w.homeserver.room(conversation(1).room_id).state == ConversationState.ARCHIVED
    assert w.homeserver.room(conversation(2).room_id).state is None


async def test_the_sweep_time_can_be_given() -> None:
    w, archive = archive_world(START)
    w.store.seed_conversation(conversation(1, last_message_at=START))
    assert await archive.sweep() == []
    assert [c.conversation_id for c in await archive.sweep(START + days(31))] == ["c1"]
    await w.settled()


async def test_blocked_and_archived_conversations_stay_as_they_are() -> None:
    w, archive = archive_world(START + days(100))
    w.store.seed_conversation(conversation(1, state=ConversationState.BLOCKED))
    w.store.seed_conversation(conversation(2, state=ConversationState.ARCHIVED))
    assert await archive.sweep() == []
    assert (state_of(w, 1), state_of(w, 2)) == (
        ConversationState.BLOCKED,
        ConversationState.ARCHIVED,
    )


async def test_a_new_message_makes_an_archived_conversation_active() -> None:
    w, archive = archive_world(START + days(40))
    chat = w.store.seed_conversation(conversation(1, state=ConversationState.ARCHIVED))
    await archive.reactivate(chat)
    await w.settled()
    assert state_of(w, 1) == ConversationState.ACTIVE
    assert w.homeserver.room(chat.room_id).state == ConversationState.ACTIVE
    [frame] = w.frames("conversation.updated")
    assert frame.payload["conversation"]["state"] == "active"


async def test_reactivating_leaves_a_blocked_conversation_blocked() -> None:
    w, archive = archive_world(START)
    chat = w.store.seed_conversation(conversation(1, state=ConversationState.BLOCKED))
    await archive.reactivate(chat)
    assert state_of(w, 1) == ConversationState.BLOCKED
    assert w.frames("conversation.updated") == []


async def test_the_buyers_stream_hears_of_the_archiving() -> None:
    w, archive = archive_world(START + days(31))
    w.store.seed_conversation(conversation(1, last_message_at=START))
    await archive.sweep()
    await w.settled()
    [frame] = w.frames("conversation.updated")
    assert (frame.conversation_id, frame.payload["conversation"]["state"]) == ("c1", "archived")
