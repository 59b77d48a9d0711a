"""Conversations, their context and room, blocks and the archive."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, String, bindparam, cast, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from bridge.core.events import Event
from bridge.core.ids import (
    BuyerID,
    ConversationID,
    RoomID,
    SellerID,
    SiteID,
    UserID,
)
from bridge.core.models import (
    Context,
    ContextType,
    Conversation,
    ConversationState,
    MessageStatus,
    SenderKind,
    Side,
)
from bridge.store.automatic import owing_notices
from bridge.store.base import Sessions
from bridge.store.records import (
    store_events,
    to_conversation,
    utc_now,
)
from bridge.store.schema import (
    CONVERSATIONS,
    BlockRow,
    ConversationRow,
    MessageRow,
    OrderRow,
)


def _blocks(side: Side) -> Any:
    """A column of a conversation query: whether this side of the row's pair blocks."""
    return (
        select(BlockRow.blocked_by)
        .where(
            BlockRow.site == ConversationRow.site,
            BlockRow.seller_id == ConversationRow.seller_id,
            BlockRow.buyer_id == ConversationRow.buyer_id,
            BlockRow.blocked_by == side.value,
        )
        .correlate(ConversationRow)
        .exists()
    )


# A conversation row with who blocks its pair: every conversation read carries `blocked_by`.
WITH_BLOCKS = (ConversationRow, _blocks(Side.BUYER), _blocks(Side.SELLER))


def _blocked_by(by_buyer: bool, by_seller: bool) -> frozenset[Side]:
    return frozenset(
        side for side, blocks in ((Side.BUYER, by_buyer), (Side.SELLER, by_seller)) if blocks
    )


def with_blocks(row: ConversationRow, by_buyer: bool, by_seller: bool) -> Conversation:
    """A row of a `WITH_BLOCKS` query (unpacked) as the conversation it is."""
    return to_conversation(row, blocked_by=_blocked_by(by_buyer, by_seller))


# The reads of one conversation done for every message, built once, as Core statements:
# plain rows (`read_with_blocks`), no ORM objects.
_WITH_BLOCKS_READ = select(
    *CONVERSATIONS.c,
    _blocks(Side.BUYER).label("blocked_by_buyer"),
    _blocks(Side.SELLER).label("blocked_by_seller"),
)
CONVERSATION_BY_ID = _WITH_BLOCKS_READ.where(CONVERSATIONS.c.conversation_id == bindparam("id"))
CONVERSATION_BY_ROOM = _WITH_BLOCKS_READ.where(CONVERSATIONS.c.room_id == bindparam("room"))


def read_with_blocks(row: Row[Any]) -> Conversation:
    """A row of `CONVERSATION_BY_ID` or `CONVERSATION_BY_ROOM` as the conversation it is."""
    return to_conversation(row, blocked_by=_blocked_by(row.blocked_by_buyer, row.blocked_by_seller))


class ConversationStore(Sessions):
    # Conversations

    async def create_conversation(
        self, conversation: Conversation, events: Sequence[Event]
    ) -> tuple[Conversation, bool]:
        same_context = (
            ConversationRow.site == conversation.site,
            ConversationRow.seller_id == conversation.seller_id,
            ConversationRow.buyer_id == conversation.buyer_id,
            ConversationRow.context_type == conversation.context.type.value,
            ConversationRow.context_id == conversation.context.id,
        )
        try:
            async with self._writes.begin() as session:
                existing = (
                    await session.execute(select(*WITH_BLOCKS).where(*same_context))
                ).first()
                if existing is not None:
                    return with_blocks(*existing), False
                session.add(
                    ConversationRow(
                        conversation_id=conversation.conversation_id,
                        site=conversation.site,
                        seller_id=conversation.seller_id,
                        buyer_id=conversation.buyer_id,
                        context_type=conversation.context.type.value,
                        context_id=conversation.context.id,
                        context=conversation.context.to_json(),
                        state=conversation.state.value,
                        room_id=conversation.room_id,
                        created_at=conversation.created_at,
                        last_message_at=None,
                        buyer_read_seq=0,
                        seller_read_seq=0,
                    )
                )
                await store_events(session, events)
            return conversation, True
        except IntegrityError:
            # Another request made the same conversation at the same moment.
            async with self._reads() as session:
                existing = (
                    await session.execute(select(*WITH_BLOCKS).where(*same_context))
                ).first()
                if existing is None:
                    raise
                return with_blocks(*existing), False

    async def get_conversation(
        self, site: SiteID, conversation_id: ConversationID
    ) -> Conversation | None:
        conversation = await self.get_conversation_by_id(conversation_id)
        if conversation is None or conversation.site != site:
            return None
        return conversation

    async def get_conversation_by_id(self, conversation_id: ConversationID) -> Conversation | None:
        row = await self._read_first(CONVERSATION_BY_ID, {"id": conversation_id})
        return read_with_blocks(row) if row else None

    async def list_conversations(
        self,
        site: SiteID,
        *,
        seller_id: SellerID | None = None,
        buyer_id: BuyerID | None = None,
        state: ConversationState | None = None,
        label: str | None = None,
        assignee: UserID | None = None,
    ) -> list[Conversation]:
        def unread(sender: SenderKind, read_seq: Any) -> Any:
            return (
                select(func.count(MessageRow.seq))
                .where(
                    MessageRow.conversation_id == ConversationRow.conversation_id,
                    MessageRow.sender == sender.value,
                    MessageRow.seq > read_seq,
                    MessageRow.deleted_at.is_(None),
                )
                .correlate(ConversationRow)
                .scalar_subquery()
            )

        query = select(
            *WITH_BLOCKS,
            unread(SenderKind.SELLER, ConversationRow.buyer_read_seq),
            unread(SenderKind.BUYER, ConversationRow.seller_read_seq),
        ).where(ConversationRow.site == site)
        if seller_id is not None:
            query = query.where(ConversationRow.seller_id == seller_id)
        if buyer_id is not None:
            query = query.where(ConversationRow.buyer_id == buyer_id)
        if state is not None:
            query = query.where(ConversationRow.state == state.value)
        if label is not None:
            # A label is letters, digits and '-' (core/labels.py): quoted, it can only match
            # a whole entry of the JSON list, on SQLite and PostgreSQL alike.
            query = query.where(cast(ConversationRow.labels, String).like(f'%"{label}"%'))
        if assignee is not None:
            query = query.where(ConversationRow.assignee == assignee)
        query = query.order_by(
            func.coalesce(ConversationRow.last_message_at, ConversationRow.created_at).desc(),
            ConversationRow.conversation_id,
        )
        async with self._reads() as session:
            rows = (await session.execute(query)).all()
        return [
            to_conversation(row, buyer, seller, _blocked_by(by_buyer, by_seller))
            for row, by_buyer, by_seller, buyer, seller in rows
        ]

    async def conversations_needing_delivery(self) -> list[Conversation]:
        pending = select(MessageRow.conversation_id).where(
            MessageRow.status == MessageStatus.PENDING.value
        )
        async with self._reads() as session:
            rows = await session.execute(
                select(*WITH_BLOCKS).where(
                    (ConversationRow.room_id.is_(None))
                    | ConversationRow.conversation_id.in_(pending)
                    | ConversationRow.conversation_id.in_(owing_notices())
                )
            )
            return [with_blocks(*row) for row in rows]

    async def mark_members_stale(
        self, conversation_ids: Sequence[ConversationID], stale: bool
    ) -> None:
        if not conversation_ids:
            return
        async with self._writes.begin() as session:
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.conversation_id.in_(conversation_ids))
                .values(members_stale=stale)
            )

    async def conversations_with_stale_members(self) -> list[ConversationID]:
        async with self._reads() as session:
            found = await session.scalars(
                select(ConversationRow.conversation_id).where(ConversationRow.members_stale)
            )
            return [ConversationID(conversation_id) for conversation_id in found]

    async def set_room(self, conversation_id: ConversationID, room_id: RoomID) -> None:
        async with self._writes.begin() as session:
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.conversation_id == conversation_id)
                .values(room_id=room_id)
            )

    async def set_context(self, conversation_id: ConversationID, context: Context) -> None:
        async with self._writes.begin() as session:
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.conversation_id == conversation_id)
                .values(context=context.to_json())
            )
            if context.type == ContextType.ORDER:
                # The courier rebuilds the topic from the context alone: the order it is
                # about owes the room its status again (`core/orders.OrderRoom`).
                await session.execute(
                    update(OrderRow)
                    .where(
                        OrderRow.conversation_id == conversation_id,
                        OrderRow.order_id == context.id,
                    )
                    .values(room_synced_at=None)
                )

    async def set_translation_enabled(self, conversation_id: ConversationID, enabled: bool) -> None:
        async with self._writes.begin() as session:
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.conversation_id == conversation_id)
                .values(translation_enabled=enabled)
            )

    # The seller's marks: labels and assignee

    async def set_labels(
        self,
        conversation_id: ConversationID,
        labels: Sequence[str],
        events_for: Callable[[Conversation], Sequence[Event]],
    ) -> Conversation | None:
        return await self._mark(conversation_id, {"labels": sorted(labels)}, events_for)

    async def set_assignee(
        self,
        conversation_id: ConversationID,
        assignee: UserID | None,
        events_for: Callable[[Conversation], Sequence[Event]],
    ) -> Conversation | None:
        return await self._mark(conversation_id, {"assignee": assignee}, events_for)

    async def _mark(
        self,
        conversation_id: ConversationID,
        values: dict[str, Any],
        events_for: Callable[[Conversation], Sequence[Event]],
    ) -> Conversation | None:
        """Set the columns and store the events of the conversation as changed, at once."""
        async with self._writes.begin() as session:
            found = (
                await session.execute(
                    select(*WITH_BLOCKS)
                    .where(ConversationRow.conversation_id == conversation_id)
                    .with_for_update(of=ConversationRow)
                )
            ).first()
            if found is None:
                return None
            row = found[0]
            for column, value in values.items():
                setattr(row, column, value)
            await session.flush()
            conversation = with_blocks(*found)
            await store_events(session, events_for(conversation))
            return conversation

    # Blocks

    async def blocks(self, site: SiteID, seller_id: SellerID, buyer_id: BuyerID) -> frozenset[Side]:
        async with self._reads() as session:
            sides = await session.scalars(
                select(BlockRow.blocked_by).where(
                    BlockRow.site == site,
                    BlockRow.seller_id == seller_id,
                    BlockRow.buyer_id == buyer_id,
                )
            )
            return frozenset(Side(side) for side in sides)

    async def set_block(
        self,
        site: SiteID,
        seller_id: SellerID,
        buyer_id: BuyerID,
        side: Side,
        blocked: bool,
        events_for: Callable[[Conversation], Sequence[Event]],
    ) -> list[Conversation]:
        """Add or lift one side's block; every conversation of the pair takes the state and
        `blocked_by` that follow. Returns the conversations that changed: all of the pair's
        when this side's block changed, none when it already stood (or was already lifted)."""
        pair = (
            BlockRow.site == site,
            BlockRow.seller_id == seller_id,
            BlockRow.buyer_id == buyer_id,
        )
        async with self._writes.begin() as session:
            # The pair's rows are locked first, so two calls for one pair take turns and the
            # second sees what the first did (SQLite's BEGIN IMMEDIATE already serialises).
            rows = (
                await session.scalars(
                    select(ConversationRow)
                    .where(
                        ConversationRow.site == site,
                        ConversationRow.seller_id == seller_id,
                        ConversationRow.buyer_id == buyer_id,
                    )
                    .with_for_update()
                )
            ).all()
            before = frozenset(
                Side(value)
                for value in await session.scalars(select(BlockRow.blocked_by).where(*pair))
            )
            if (side in before) == blocked:
                return []
            if blocked:
                await session.execute(
                    insert(BlockRow).values(
                        site=site,
                        seller_id=seller_id,
                        buyer_id=buyer_id,
                        blocked_by=side.value,
                        created_at=utc_now(),
                    )
                )
                after = before | {side}
            else:
                await session.execute(
                    delete(BlockRow).where(*pair, BlockRow.blocked_by == side.value)
                )
                after = before - {side}
            changed = []
            for row in rows:
                if after:
                    row.state = ConversationState.BLOCKED.value
                elif row.state == ConversationState.BLOCKED.value:
                    row.state = ConversationState.ACTIVE.value
                changed.append(to_conversation(row, blocked_by=after))
            await session.flush()
            for conversation in changed:
                await store_events(session, events_for(conversation))
            return changed

    # Archive

    async def set_state(
        self,
        conversation_ids: Sequence[ConversationID],
        state: ConversationState,
        events_for: Callable[[Conversation], Sequence[Event]],
        *,
        only_from: ConversationState,
    ) -> list[Conversation]:
        """Move conversations from `only_from` to `state`; returns those that moved."""
        if not conversation_ids:
            return []
        async with self._writes.begin() as session:
            found = (
                await session.execute(
                    select(*WITH_BLOCKS).where(
                        ConversationRow.conversation_id.in_(conversation_ids),
                        ConversationRow.state == only_from.value,
                    )
                )
            ).all()
            for row, _, _ in found:
                row.state = state.value
            await session.flush()
            changed = [with_blocks(*row) for row in found]
            for conversation in changed:
                await store_events(session, events_for(conversation))
            return changed

    async def idle_conversations(self, quiet_since: datetime) -> list[ConversationID]:
        """Active conversations with no message since `quiet_since`."""
        async with self._reads() as session:
            found = await session.scalars(
                select(ConversationRow.conversation_id).where(
                    ConversationRow.state == ConversationState.ACTIVE.value,
                    func.coalesce(ConversationRow.last_message_at, ConversationRow.created_at)
                    < quiet_since,
                )
            )
            return [ConversationID(cid) for cid in found]
