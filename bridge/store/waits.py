"""Buyers waiting for a member's answer (`response_waits`) and the reminders of each wait
(`response_reminders`): a wait opens with the buyer message that starts it, in the same
transaction (`open_wait_in`, called by `MessageStore.add_message`), and closes once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, and_, bindparam, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.core.ids import ConversationID
from bridge.core.models import Message
from bridge.core.seller_storage import (
    REMINDER_LEASE,
    DueReminder,
    OpenWait,
    WaitClosing,
    WaitOpening,
)
from bridge.store.base import Sessions
from bridge.store.conversations import WITH_BLOCKS, with_blocks
from bridge.store.schema import CONVERSATIONS, Base, ConversationRow, ReminderRow, WaitRow


def _rows(result: object) -> int:
    return cast(CursorResult[Any], result).rowcount


_WAITS = Base.metadata.tables[WaitRow.__tablename__]
_REMINDERS = Base.metadata.tables[ReminderRow.__tablename__]
# Built once: the claim runs for every buyer message.
_CLAIM_WAIT = (
    update(CONVERSATIONS)
    .where(
        CONVERSATIONS.c.conversation_id == bindparam("id"),
        CONVERSATIONS.c.waiting_since.is_(None),
    )
    # The room's sync (which puts it in the Unanswered section) is owed from here, so a
    # restart before the sync still does it.
    .values(waiting_since=bindparam("at"), members_stale=True)
    .returning(CONVERSATIONS.c.site, CONVERSATIONS.c.seller_id)
)
_EARLIER_WAIT = select(exists().where(_WAITS.c.conversation_id == bindparam("id")))
_INSERT_WAIT = insert(_WAITS).returning(_WAITS.c.wait_id)
_INSERT_REMINDER = insert(_REMINDERS)
# Read for every member's reply.
_OPEN_WAIT = (
    select(_WAITS.c.wait_id, _WAITS.c.conversation_id, _WAITS.c.opened_at)
    .where(_WAITS.c.conversation_id == bindparam("id"), _WAITS.c.closed_at.is_(None))
    .order_by(_WAITS.c.wait_id.desc())
    .limit(1)
)


async def open_wait_in(connection: AsyncConnection, message: Message, wait: WaitOpening) -> bool:
    """Open a wait for this buyer message unless one is open, inside the caller's
    transaction: claiming `waiting_since` with "IS NULL" makes two racing messages open one."""
    claimed = (
        await connection.execute(
            _CLAIM_WAIT, {"id": message.conversation_id, "at": message.created_at}
        )
    ).first()
    if claimed is None:
        return False
    site, seller_id = claimed
    earlier = await connection.scalar(_EARLIER_WAIT, {"id": message.conversation_id})
    wait_id = await connection.scalar(
        _INSERT_WAIT,
        {
            "conversation_id": message.conversation_id,
            "site": site,
            "seller_id": seller_id,
            "opened_at": message.created_at,
            "opened_by": message.message_id,
            "first": not earlier,
        },
    )
    if wait.reminders:
        await connection.execute(
            _INSERT_REMINDER,
            [
                {"wait_id": wait_id, "kind": kind, "due_at": due_at, "done_at": None}
                for kind, due_at in wait.reminders
            ],
        )
    return True


class WaitStore(Sessions):
    async def open_wait(self, conversation_id: ConversationID) -> OpenWait | None:
        row = await self._read_first(_OPEN_WAIT, {"id": conversation_id})
        if row is None:
            return None
        return OpenWait(row.wait_id, ConversationID(row.conversation_id), row.opened_at)

    async def close_wait(self, wait: OpenWait, closing: WaitClosing) -> bool:
        async with self._writes.begin() as session:
            closed = await session.execute(
                update(WaitRow)
                .where(WaitRow.wait_id == wait.wait_id, WaitRow.closed_at.is_(None))
                .values(
                    closed_at=closing.closed_at,
                    outcome=closing.outcome,
                    closed_by=closing.closed_by,
                    wall_seconds=closing.wall_seconds,
                    working_seconds=closing.working_seconds,
                )
            )
            if _rows(closed) == 0:
                return False
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.conversation_id == wait.conversation_id)
                .values(waiting_since=None, members_stale=True)
            )
            await session.execute(
                delete(ReminderRow).where(
                    ReminderRow.wait_id == wait.wait_id, ReminderRow.done_at.is_(None)
                )
            )
            return True

    async def due_reminders(self, now: datetime, limit: int) -> list[DueReminder]:
        async with self._reads() as session:
            found = await session.execute(
                select(ReminderRow, WaitRow.opened_at, *WITH_BLOCKS)
                .join(WaitRow, WaitRow.wait_id == ReminderRow.wait_id)
                .join(ConversationRow, ConversationRow.conversation_id == WaitRow.conversation_id)
                .where(
                    ReminderRow.done_at.is_(None),
                    _not_claimed(now),
                    ReminderRow.due_at <= now,
                    WaitRow.closed_at.is_(None),
                )
                .order_by(ReminderRow.due_at, ReminderRow.wait_id)
                .limit(limit)
            )
            return [
                DueReminder(
                    wait_id=reminder.wait_id,
                    kind=reminder.kind,
                    due_at=reminder.due_at,
                    conversation=with_blocks(row, by_buyer, by_seller),
                    opened_at=opened_at,
                )
                for reminder, opened_at, row, by_buyer, by_seller in found
            ]

    async def claim_reminders(self, keys: Sequence[tuple[int, str]], at: datetime) -> set[int]:
        if not keys:
            return set()
        async with self._writes.begin() as session:
            claimed = await session.execute(
                update(ReminderRow)
                .where(_any_of(keys), ReminderRow.done_at.is_(None), _not_claimed(at))
                .values(claimed_at=at)
                .returning(ReminderRow.wait_id)
            )
            return set(claimed.scalars())

    async def finish_reminders(self, keys: Sequence[tuple[int, str]], at: datetime) -> None:
        if not keys:
            return
        async with self._writes.begin() as session:
            await session.execute(update(ReminderRow).where(_any_of(keys)).values(done_at=at))

    async def release_reminders(self, keys: Sequence[tuple[int, str]]) -> None:
        if not keys:
            return
        async with self._writes.begin() as session:
            await session.execute(update(ReminderRow).where(_any_of(keys)).values(claimed_at=None))


def _not_claimed(now: datetime) -> Any:
    """Not claimed, or claimed by a run that has had its lease and did not finish."""
    return or_(ReminderRow.claimed_at.is_(None), ReminderRow.claimed_at < now - REMINDER_LEASE)


def _any_of(keys: Sequence[tuple[int, str]]) -> Any:
    return or_(*(and_(ReminderRow.wait_id == w, ReminderRow.kind == k) for w, k in keys))
