"""Waits and reminders in the store, on SQLite and PostgreSQL: a wait opens with the buyer
message that starts it, once; it closes once, dropping the reminders still to come; a
reminder is claimed by one run only, and a released claim comes back."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from bridge.core.ids import new_message_id
from bridge.core.seller_storage import REMINDER_LEASE, WaitClosing, WaitOpening
from bridge.store.repository import SqlRepository
from bridge.store.schema import ReminderRow, WaitRow
from tests.store.test_repository import NOW, buyer_message, engine, repository, seeded

__all__ = ["engine", "repository"]

OPENING = WaitOpening(
    reminders=(("half", NOW + timedelta(hours=12)), ("last_hour", NOW + timedelta(hours=23)))
)


async def test_a_wait_opens_once_with_its_reminders_and_closes_once(
    repository: SqlRepository,
) -> None:
    chat = await seeded(repository)
    first = buyer_message(chat.conversation_id, "c1")
    await repository.add_message(first, [], wait=OPENING)
    # A second buyer message, and the first one's repeat: the wait stays the one.
    await repository.add_message(
        replace(buyer_message(chat.conversation_id, "c2"), created_at=NOW + timedelta(minutes=5)),
        [],
        wait=OPENING,
    )
    await repository.add_message(replace(first, message_id=new_message_id()), [], wait=OPENING)
    wait = await repository.open_wait(chat.conversation_id)
    assert wait is not None and wait.opened_at == NOW
    stored = await repository.get_conversation_by_id(chat.conversation_id)
    assert stored is not None and stored.waiting_since == NOW

    due = await repository.due_reminders(NOW + timedelta(hours=12), 10)
    assert [(r.kind, r.conversation.conversation_id) for r in due] == [
        ("half", chat.conversation_id)
    ]
    assert await repository.claim_reminders([(wait.wait_id, "half")], NOW) == {wait.wait_id}
    await repository.finish_reminders([(wait.wait_id, "half")], NOW)

    closing = WaitClosing(NOW + timedelta(hours=2), "replied", "@o:x", 7200.0, 3600.0)
    assert await repository.close_wait(wait, closing)
    assert not await repository.close_wait(wait, closing)
    assert await repository.open_wait(chat.conversation_id) is None
    stored = await repository.get_conversation_by_id(chat.conversation_id)
    assert stored is not None and stored.waiting_since is None
    assert await repository.due_reminders(NOW + timedelta(days=2), 10) == []

    async with repository._reads() as session:
        [row] = (await session.scalars(select(WaitRow))).all()
        kinds = (await session.scalars(select(ReminderRow.kind))).all()
    assert (row.outcome, row.closed_by, row.wall_seconds, row.working_seconds, row.first) == (
        "replied",
        "@o:x",
        7200.0,
        3600.0,
        True,
    )
    assert row.opened_by == first.message_id
    # The reminder already sent stays as a record; the one to come is gone.
    assert list(kinds) == ["half"]

    # The next buyer message opens the conversation's second wait.
    await repository.add_message(
        replace(buyer_message(chat.conversation_id, "c3"), created_at=NOW + timedelta(hours=3)),
        [],
        wait=OPENING,
    )
    second = await repository.open_wait(chat.conversation_id)
    assert second is not None and second.wait_id != wait.wait_id
    async with repository._reads() as session:
        firsts = (await session.scalars(select(WaitRow.first).order_by(WaitRow.wait_id))).all()
    assert list(firsts) == [True, False]


async def test_two_buyer_messages_at_once_open_one_wait(repository: SqlRepository) -> None:
    chat = await seeded(repository)
    await asyncio.gather(
        *(
            repository.add_message(buyer_message(chat.conversation_id, f"c{n}"), [], wait=OPENING)
            for n in range(4)
        )
    )
    async with repository._reads() as session:
        waits = (await session.scalars(select(WaitRow))).all()
    assert len(waits) == 1


async def test_a_reminder_is_claimed_once_and_a_release_or_a_lapsed_claim_gives_it_back(
    repository: SqlRepository,
) -> None:
    chat = await seeded(repository)
    await repository.add_message(buyer_message(chat.conversation_id, "c1"), [], wait=OPENING)
    at = NOW + timedelta(hours=12)
    [due] = await repository.due_reminders(at, 10)
    keys = [(due.wait_id, due.kind)]
    claims = await asyncio.gather(*(repository.claim_reminders(keys, at) for _ in range(3)))
    assert sorted(len(c) for c in claims) == [0, 0, 1]
    assert await repository.due_reminders(at, 10) == []
    await repository.release_reminders(keys)
    assert len(await repository.due_reminders(at, 10)) == 1

    # A run that claimed it and died before finishing: after the lease another run takes it.
    assert await repository.claim_reminders(keys, at) == {due.wait_id}
    assert await repository.due_reminders(at + REMINDER_LEASE / 2, 10) == []
    later = at + REMINDER_LEASE + timedelta(seconds=1)
    assert len(await repository.due_reminders(later, 10)) == 1
    assert await repository.claim_reminders(keys, later) == {due.wait_id}
    await repository.finish_reminders(keys, later)
    assert await repository.due_reminders(later + REMINDER_LEASE * 2, 10) == []
