"""The store on SQLite and PostgreSQL: migrations, idempotent writes, order, the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.core.events import FeedFrame, WebhookEvent
from bridge.core.ids import (
    BuyerID,
    ConversationID,
    EventID,
    RoomID,
    SellerID,
    SiteID,
    UserID,
    new_conversation_id,
    new_message_id,
)
from bridge.core.models import (
    Buyer,
    Context,
    ContextType,
    Conversation,
    ConversationState,
    Member,
    Message,
    MessageStatus,
    Seller,
    SenderKind,
    Side,
)
from bridge.core.storage import ConversationBlocked
from bridge.store.database import create_engine, migrate, sessions
from bridge.store.repository import SqlRepository
from bridge.store.schema import Base

SITE = SiteID("shop")
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def repository(engine: AsyncEngine) -> SqlRepository:
    return SqlRepository(sessions(engine))


def conversation(context_id: str = "p1") -> Conversation:
    return Conversation(
        site=SITE,
        conversation_id=new_conversation_id(),
        seller_id=SellerID("s1"),
        buyer_id=BuyerID("b1"),
        context=Context(ContextType.PRODUCT, context_id, "Kettle", price="9.90"),
        state=ConversationState.ACTIVE,
        room_id=None,
        created_at=NOW,
    )


def buyer_message(conversation_id: ConversationID, client_id: str, text: str = "hi") -> Message:
    return Message(
        message_id=new_message_id(),
        conversation_id=conversation_id,
        sender=SenderKind.BUYER,
        sender_name="Bob",
        text=text,
        lang="en",
        status=MessageStatus.PENDING,
        created_at=NOW,
        client_id=client_id,
    )


async def seeded(repository: SqlRepository) -> Conversation:
    await repository.put_seller(
        Seller(SITE, SellerID("s1"), "Shop", "en", members=(Member(UserID("@o:x"), "owner"),))
    )
    await repository.put_buyer(Buyer(SITE, BuyerID("b1"), "Bob"))
    stored, created = await repository.create_conversation(conversation(), [])
    assert created
    return stored


async def test_migrations_match_the_models_and_rerun_harmlessly(engine: AsyncEngine) -> None:
    await migrate(engine)
    async with engine.connect() as connection:
        differences = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert differences == []


async def test_sellers_keep_members_in_order_and_replace_them(repository: SqlRepository) -> None:
    members = (Member(UserID("@b:x"), "manager"), Member(UserID("@a:x"), "owner"))
    await repository.put_seller(Seller(SITE, SellerID("s1"), "Shop", "en", members=members))
    assert (await repository.get_seller(SITE, SellerID("s1"))).members == members  # type: ignore[union-attr]
    await repository.put_seller(Seller(SITE, SellerID("s1"), "Shop 2", "de", members=members[1:]))
    stored = await repository.get_seller(SITE, SellerID("s1"))
    assert stored is not None and (stored.name, stored.members) == ("Shop 2", members[1:])
    assert await repository.get_seller(SiteID("other"), SellerID("s1")) is None


async def test_same_context_is_one_conversation_even_when_asked_at_once(
    repository: SqlRepository,
) -> None:
    await seeded(repository)
    results = await asyncio.gather(
        *(repository.create_conversation(conversation("p2"), []) for _ in range(5))
    )
    assert sum(created for _, created in results) == 1
    assert len({stored.conversation_id for stored, _ in results}) == 1


async def test_messages_are_idempotent_by_client_id_and_event_id(
    repository: SqlRepository,
) -> None:
    stored = await seeded(repository)
    results = await asyncio.gather(
        *(repository.add_message(buyer_message(stored.conversation_id, "c1"), []) for _ in range(5))
    )
    assert sum(created for _, created in results) == 1
    reply = Message(
        message_id=new_message_id(),
        conversation_id=stored.conversation_id,
        sender=SenderKind.SELLER,
        sender_name="Owner",
        text="hello",
        lang="en",
        status=MessageStatus.SENT,
        created_at=NOW,
        event_id=EventID("$e1"),
    )
    assert (await repository.add_message(reply, []))[1]
    again = Message(**{**reply.__dict__, "message_id": new_message_id()})
    assert not (await repository.add_message(again, []))[1]
    listed = await repository.list_messages(stored.conversation_id, after=None, limit=50)
    assert [m.text for m in listed] == ["hi", "hello"]
    assert listed[0].created_at == NOW and listed[0].created_at.tzinfo is not None


async def test_a_block_stored_first_keeps_a_buyer_message_out(
    repository: SqlRepository,
) -> None:
    """The blocked check is part of storing the message, so a block that wins a race with a
    buyer's message keeps it out entirely: no message, no feed frame."""
    stored = await seeded(repository)
    before, _ = await repository.add_message(buyer_message(stored.conversation_id, "c1"), [])
    await repository.set_state(
        [stored.conversation_id],
        ConversationState.BLOCKED,
        lambda _: [],
        only_from=ConversationState.ACTIVE,
    )
    late = buyer_message(stored.conversation_id, "c2", "still there?")
    frame = FeedFrame(SITE, BuyerID("b1"), "message.created", stored.conversation_id, {})
    with pytest.raises(ConversationBlocked):
        await repository.add_message(late, [frame])
    listed = await repository.list_messages(stored.conversation_id, after=None, limit=50)
    assert [m.text for m in listed] == ["hi"]
    assert await repository.latest_frame(SITE, BuyerID("b1")) == 0
    # A repeat of what was stored before the block is still the same message.
    repeat, created = await repository.add_message(buyer_message(stored.conversation_id, "c1"), [])
    assert (repeat.message_id, created) == (before.message_id, False)


async def test_pending_messages_come_back_in_stored_order(repository: SqlRepository) -> None:
    stored = await seeded(repository)
    for n in range(5):
        await repository.add_message(buyer_message(stored.conversation_id, f"c{n}", f"m{n}"), [])
    pending = await repository.pending_messages(stored.conversation_id)
    assert [m.text for m in pending] == ["m0", "m1", "m2", "m3", "m4"]
    await repository.set_room(stored.conversation_id, RoomID("!room:x"))
    delivered = await repository.mark_delivered(pending[0].message_id, EventID("$m0"), lambda m: [])
    assert delivered.status == MessageStatus.SENT
    assert [m.text for m in await repository.pending_messages(stored.conversation_id)] == [
        "m1",
        "m2",
        "m3",
        "m4",
    ]
    needing = await repository.conversations_needing_delivery()
    assert [c.conversation_id for c in needing] == [stored.conversation_id]


async def test_a_failed_message_keeps_its_reason_until_it_is_tried_again(
    repository: SqlRepository,
) -> None:
    stored = await seeded(repository)
    message, _ = await repository.add_message(buyer_message(stored.conversation_id, "c1"), [])
    failed = await repository.mark_failed(
        message.message_id, "M_FORBIDDEN: not in room", lambda m: []
    )
    assert (failed.status, failed.error) == (MessageStatus.FAILED, "M_FORBIDDEN: not in room")
    again = await repository.get_message(message.message_id)
    assert again is not None and again.error == "M_FORBIDDEN: not in room"
    requeued = await repository.requeue(message.message_id, lambda m: [])
    assert (requeued.status, requeued.error) == (MessageStatus.PENDING, None)
    await repository.mark_failed(message.message_id, "once more", lambda m: [])
    await repository.requeue(message.message_id, lambda m: [])
    sent = await repository.mark_delivered(message.message_id, EventID("$m1"), lambda m: [])
    assert (sent.status, sent.error) == (MessageStatus.SENT, None)


async def test_webhook_outbox_keeps_order_and_waits_out_a_deferral(
    repository: SqlRepository,
) -> None:
    stored = await seeded(repository)
    for n in range(3):
        event = WebhookEvent(SITE, "message.created", stored.conversation_id, {"n": n})
        await repository.add_message(buyer_message(stored.conversation_id, f"w{n}"), [event])
    now = datetime.now(UTC)
    due = await repository.due_webhooks(SITE, now, 10)
    assert [b'"n":0' in w.body for w in due] == [True, False, False]
    assert len(due) == 3
    await repository.defer_webhook(due[0].delivery_id, now + timedelta(minutes=5), "HTTP 503")
    assert await repository.due_webhooks(SITE, now, 10) == []
    assert await repository.next_webhook_attempt(SITE) == now + timedelta(minutes=5)
    later = await repository.due_webhooks(SITE, now + timedelta(minutes=6), 10)
    assert [w.delivery_id for w in later] == [w.delivery_id for w in due]
    assert later[0].attempts == 1
    for webhook in later:
        await repository.mark_webhook_delivered(webhook.delivery_id, now)
    assert await repository.next_webhook_attempt(SITE) is None


async def test_transactions_are_stored_once(repository: SqlRepository) -> None:
    assert await repository.store_transaction("t1", [{"type": "m.room.message"}])
    assert not await repository.store_transaction("t1", [])
    [pending] = await repository.unprocessed_transactions()
    assert (pending.txn_id, pending.events) == ("t1", [{"type": "m.room.message"}])
    await repository.mark_transaction_processed("t1")
    assert await repository.unprocessed_transactions() == []
    assert not await repository.store_transaction("t1", [])


async def test_only_transactions_applied_before_the_cut_are_forgotten(
    repository: SqlRepository,
) -> None:
    for txn_id in ("applied", "waiting"):
        assert await repository.store_transaction(txn_id, [{"event_id": f"${txn_id}"}])
    await repository.mark_transaction_processed("applied")
    cut = datetime.now(UTC) + timedelta(seconds=1)
    assert await repository.prune_transactions(cut - timedelta(days=1)) == 0
    assert await repository.event_ids_received_since(cut - timedelta(days=1)) == {
        "$applied",
        "$waiting",
    }
    assert await repository.prune_transactions(cut) == 1
    # The one not yet applied stays, to be applied; the other is gone, and may come again.
    assert [t.txn_id for t in await repository.unprocessed_transactions()] == ["waiting"]
    assert await repository.event_ids_received_since(cut - timedelta(days=1)) == {"$waiting"}
    assert await repository.store_transaction("applied", [])


async def test_blocks_say_who_blocks_and_a_repeat_changes_nothing_even_at_once(
    repository: SqlRepository,
) -> None:
    stored = await seeded(repository)
    pair = (SITE, SellerID("s1"), BuyerID("b1"))
    # Five identical blocks at once: one changes the pair, four find it done.
    outcomes = await asyncio.gather(
        *(repository.set_block(*pair, Side.SELLER, True, lambda c: []) for _ in range(5))
    )
    assert sorted(len(changed) for changed in outcomes) == [0, 0, 0, 0, 1]
    read = await repository.get_conversation_by_id(stored.conversation_id)
    assert read is not None
    assert (read.state, read.blocked_by) == (ConversationState.BLOCKED, frozenset({Side.SELLER}))

    (both,) = await repository.set_block(*pair, Side.BUYER, True, lambda c: [])
    assert both.blocked_by == frozenset({Side.SELLER, Side.BUYER})
    # A repeat changes nothing; so does lifting a block that is not there (at the end).
    assert await repository.set_block(*pair, Side.BUYER, True, lambda c: []) == []
    (seller_only,) = await repository.set_block(*pair, Side.BUYER, False, lambda c: [])
    assert (seller_only.state, seller_only.blocked_by) == (
        ConversationState.BLOCKED,
        frozenset({Side.SELLER}),
    )
    (open_again,) = await repository.set_block(*pair, Side.SELLER, False, lambda c: [])
    assert (open_again.state, open_again.blocked_by) == (ConversationState.ACTIVE, frozenset())
    assert await repository.set_block(*pair, Side.SELLER, False, lambda c: []) == []
