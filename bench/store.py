"""Store benchmark: the CPU the store spends on one buyer message, SQLite as shipped.

No homeserver, no HTTP: only the store calls a buyer message makes on its way to the seller,
in the order the bridge makes them (`core/marketplace_desk.py`, `core/delivery.py`):

* the POST reads the conversation and stores the message, with its stream frame and the
  opening of the buyer's wait for an answer, in one transaction;
* the courier reads the conversation and the pending messages, then marks the message
  delivered, with its stream frame.

Two stores run side by side on two SQLite files in the same temp dir:

* **baseline**: SQLAlchemy's aiosqlite adapter as it ships, four trips to SQLite's thread
  per statement;
* **bridge**: the bridge's own engine (`store/database.py`), one trip per statement
  (`store/sqlite_hops.py`).

C conversations each carry messages one after another, C at once, in interleaved rounds
(baseline first in odd rounds, bridge first in even ones). CPU is this process's, all
threads. It prints figures, judges nothing.

    python bench/store.py [--messages 600] [--concurrency 8] [--rounds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection
from stage import progress, run_bench

from bridge.core.events import FeedFrame
from bridge.core.ids import (
    BuyerID,
    EventID,
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
)
from bridge.core.seller_storage import WaitOpening
from bridge.store.database import create_engine, create_read_engine, migrate, sessions
from bridge.store.repository import SqlRepository

SITE = SiteID("bench")
SELLER = SellerID("s1")
BUYER = BuyerID("b1")
TEXT = "Hello! Is the kettle still available, and could you ship it to Lisbon by Friday?"


@dataclass(frozen=True)
class Options:
    messages: int
    concurrency: int
    rounds: int


def four_hops(engine: Any) -> None:
    """Put back SQLAlchemy's own aiosqlite cursor on every connection `engine` opens."""

    @event.listens_for(engine.sync_engine, "connect")
    def as_shipped(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.__class__ = AsyncAdapt_aiosqlite_connection


class Store:
    """One store on its own SQLite file, with a seller, a buyer and C conversations."""

    def __init__(self, name: str, directory: Path, *, as_shipped: bool) -> None:
        url = f"sqlite+aiosqlite:///{directory / name}.db"
        self.name = name
        self.writes = create_engine(url)
        self.reads = create_read_engine(url, self.writes)
        if as_shipped:
            four_hops(self.writes)
            four_hops(self.reads)
        self.repository = SqlRepository(sessions(self.writes), sessions(self.reads))
        self.conversations: list[Conversation] = []
        self.cpu_ms: list[float] = []

    async def set_up(self, concurrency: int) -> None:
        await migrate(self.writes)
        await self.repository.put_seller(
            Seller(SITE, SELLER, "Shop", "en", members=(Member(UserID("@o:bench"), "owner"),))
        )
        await self.repository.put_buyer(Buyer(SITE, BUYER, "Bob"))
        for k in range(concurrency):
            conversation, _ = await self.repository.create_conversation(
                Conversation(
                    site=SITE,
                    conversation_id=new_conversation_id(),
                    seller_id=SELLER,
                    buyer_id=BUYER,
                    context=Context(ContextType.PRODUCT, f"p{k}", "Kettle", price="9.90"),
                    state=ConversationState.ACTIVE,
                    room_id=None,
                    created_at=datetime.now(UTC),
                ),
                [],
            )
            self.conversations.append(conversation)

    async def close(self) -> None:
        await self.writes.dispose()
        await self.reads.dispose()

    async def one_message(self, conversation: Conversation, tag: str) -> None:
        store = self.repository
        conversation_id = conversation.conversation_id

        def frame(message: Message) -> list[FeedFrame]:
            payload = {"message": {"id": message.message_id, "text": message.text}}
            return [FeedFrame(SITE, BUYER, "message.created", conversation_id, payload)]

        await store.get_conversation_by_id(conversation_id)
        draft = Message(
            message_id=new_message_id(),
            conversation_id=conversation_id,
            sender=SenderKind.BUYER,
            sender_name="Bob",
            text=TEXT,
            lang="en",
            status=MessageStatus.PENDING,
            created_at=datetime.now(UTC),
            client_id=tag,
        )
        await store.add_message(draft, frame(draft), wait=WaitOpening(()))
        await store.get_conversation_by_id(conversation_id)
        for pending in await store.pending_messages(conversation_id):
            await store.mark_delivered(pending.message_id, EventID(f"${pending.message_id}"), frame)

    async def run(self, count: int, tag: str) -> None:
        lanes = self.conversations

        async def lane(k: int) -> None:
            for i in range(k, count, len(lanes)):
                await self.one_message(lanes[k], f"{tag}-{i}")

        started = time.process_time()
        await asyncio.gather(*(lane(k) for k in range(len(lanes))))
        self.cpu_ms.append((time.process_time() - started) * 1000 / count)


async def bench(options: Options) -> None:
    with tempfile.TemporaryDirectory(prefix="bazaar-bench-") as directory:
        baseline = Store("baseline", Path(directory), as_shipped=True)
        bridge = Store("bridge", Path(directory), as_shipped=False)
        try:
            for store in (baseline, bridge):
                await store.set_up(options.concurrency)
                await store.run(options.concurrency * 4, "warm-up")
                store.cpu_ms.clear()
            for number in range(1, options.rounds + 1):
                order = (baseline, bridge) if number % 2 else (bridge, baseline)
                for store in order:
                    progress(f"Round {number}/{options.rounds}: {store.name}")
                    await store.run(options.messages, f"round{number}")
        finally:
            await baseline.close()
            await bridge.close()
        report(options, baseline.cpu_ms, bridge.cpu_ms)


def report(options: Options, baseline: Sequence[float], bridge: Sequence[float]) -> None:
    print()
    print("Bazaar Bridge store benchmark")
    print("  database      SQLite, a file per store in the temp dir")
    print(f"  messages      N = {options.messages} per run, {options.rounds} runs per store")
    print(f"  concurrency   C = {options.concurrency} conversations at once")
    print()
    print("  round  baseline ms/msg  bridge ms/msg  bridge/baseline")
    for number, (before, after) in enumerate(zip(baseline, bridge, strict=True), start=1):
        print(f"  {number:5d}  {before:15.2f}  {after:13.2f}  {after / before:15.2f}")
    before, after = statistics.median(baseline), statistics.median(bridge)
    print()
    print(f"  median CPU per message   baseline {before:.2f} ms, bridge {after:.2f} ms")
    print(f"  ratio bridge/baseline    {after / before:.2f}")


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description="The store's CPU per buyer message.")
    parser.add_argument("--messages", "-n", type=int, default=600, help="messages per run")
    parser.add_argument("--concurrency", "-c", type=int, default=8, help="conversations at once")
    parser.add_argument("--rounds", type=int, default=6, help="runs per store (default 6)")
    args = parser.parse_args(argv)
    if min(args.messages, args.concurrency, args.rounds) < 1:
        parser.error("--messages, --concurrency and --rounds must be at least 1")
    return Options(args.messages, args.concurrency, args.rounds)


def main(argv: Sequence[str] | None = None) -> int:
    return run_bench("store", bench(parse_options(argv)))


if __name__ == "__main__":
    sys.exit(main())
