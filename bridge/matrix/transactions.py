"""Applies stored appservice transactions, in the order they arrived, once each: each event
parsed once (`incoming.py`), its room classified with one lookup, then handed to the
service that answers for that kind of room."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from bridge.core.broadcast import Broadcasts
from bridge.core.delivery import Backoff
from bridge.core.duties import Duties, SoleDuties
from bridge.core.metrics import NO_METER, Meter
from bridge.core.models import Conversation
from bridge.core.ports import HomeserverUnavailable
from bridge.core.replies import SellerReplies
from bridge.core.room_events import (
    ConversationRoom,
    ManagementRoom,
    MembershipChange,
    MessageEdit,
    PowerLevelsChange,
    ReadReceipt,
    Redaction,
    RoomEvent,
    RoomMessage,
    SiteRoom,
    TypingChange,
)
from bridge.core.storage import RoomDirectory, StoredTransaction, TransactionLog
from bridge.core.tasks import TaskKeeper
from bridge.matrix.identifiers import MatrixNames
from bridge.matrix.incoming import parse_event
from bridge.matrix.room_state import kept
from bridge.matrix.rooms import MatrixRooms
from bridge.matrix.spaces import ADMIN_ROOM

logger = logging.getLogger(__name__)

# What an echo kept for the room state keeps besides its content.
_ECHO_KEYS = ("type", "room_id", "sender", "state_key", "event_id")
# How long one event may wait for the store or the homeserver to come back (seconds).
OUTAGE_PATIENCE = 15 * 60.0
# Ids of recovered events remembered, to drop the homeserver's late pushes of them.
RECOVERED_KEPT = 50_000
# Keys of transactions queued here remembered, so a look in the store queues none twice.
QUEUED_KEPT = 50_000
# The duty of applying the transactions, whichever replica took them (`core/duties.py`).
APPSERVICE_DUTY = "appservice"


def transaction_key(txn_id: str, events: list[dict[str, Any]]) -> str:
    """What a transaction is stored under: its id and a digest of its events' ids. Synapse
    sends a transaction again with the same id and events until it hears 200, and those
    repeats are dropped; but a Synapse on SQLite numbers transactions anew from its last
    stored one after a restart, so one id can come with other events, which are new."""
    ids = "\n".join(str(event.get("event_id", "")) for event in events)
    return f"{txn_id[:200]}/{hashlib.sha256(ids.encode()).hexdigest()[:16]}"


class TransactionProcessor:
    def __init__(
        self,
        log: TransactionLog,
        replies: SellerReplies,
        rooms: MatrixRooms,
        names: MatrixNames,
        directory: RoomDirectory,
        broadcasts: Broadcasts,
        tasks: TaskKeeper,
        meter: Meter = NO_METER,
        *,
        is_outage: Callable[[BaseException], bool] = lambda _: False,
        backoff: Backoff | None = None,
        duties: Duties | None = None,
    ) -> None:
        # A failure that passes (the store or the homeserver away) is waited out;
        # HomeserverUnavailable always is, what else counts the store decides.
        self._is_outage: Callable[[BaseException], bool] = lambda error: (
            isinstance(error, HomeserverUnavailable) or is_outage(error)
        )
        self._backoff = backoff or Backoff()
        self._broadcasts = broadcasts
        self._meter = meter
        self._log = log
        self._replies = replies
        self._rooms = rooms
        self._names = names
        self._directory = directory
        self._tasks = tasks
        # Any replica stores what the homeserver pushes to it; the one holding the duty
        # applies everything stored, in the order stored. Alone, what is stored is queued
        # at once; with replicas, the holder queues from the store, which has every
        # transaction the homeserver sent before this one (it waits for each 200).
        self._duties = duties or SoleDuties()
        self._duties.hear(APPSERVICE_DUTY, lambda _: self._look_soon())
        self._queued: dict[str, None] = {}
        self._looker: asyncio.Task[None] | None = None
        self._look_again = False
        # Transactions are stored one at a time, so that a sweep's look at what arrived
        # (`recover`) and the storing of what it found see no transaction half-stored.
        self._storing = asyncio.Lock()
        # Ids of the events a sweep found, in the order found: the homeserver may yet push
        # some of them, and those are dropped.
        self._recovered: dict[str, None] = {}
        self._queue: asyncio.Queue[StoredTransaction] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    async def accept(self, txn_id: str, events: list[dict[str, Any]]) -> None:
        """Store the transaction (a repeat is a no-op) and queue it; returns once stored.

        Echoes of what the bridge itself sent are dropped first: most transactions are
        nothing else, and they need neither storing nor applying. Those that change the room
        state a members' sync reads stay, to be kept (someone else may have sent them in the
        bot's name: a server admin taking over a room does).
        """
        self._meter.transaction_received(len(events))
        wanted: list[dict[str, Any]] = []
        for event in events:
            if event.get("event_id") in self._recovered:
                continue  # a sweep found it first
            if not self._is_echo(event):
                wanted.append(event)
            elif (entry := kept(event)) is not None:
                # Stored with only what is kept of it: a ghost's membership carries the
                # buyer's name, which an erasure must find nowhere.
                wanted.append(
                    {key: event.get(key) for key in _ECHO_KEYS} | {"content": entry.content}
                )
        async with self._storing:
            key = transaction_key(txn_id, wanted)
            if wanted and await self._log.store_transaction(key, wanted):
                await self._stored(StoredTransaction(key, wanted))

    async def recover(self, events: list[dict[str, Any]], *, seen_since: datetime) -> int:
        """Apply, like a transaction's, those of `events` (read from the rooms' timelines,
        `matrix/catchup.py`) that came in no transaction stored since `seen_since`; the
        homeserver's later pushes of them are dropped. Returns how many were new.

        Only others' events count: the bridge's own were recorded when it sent them."""
        async with self._storing:
            seen = await self._log.event_ids_received_since(seen_since)
            fresh = [
                event
                for event in events
                if isinstance(event_id := event.get("event_id"), str)
                and event_id not in seen
                and event_id not in self._recovered
                and not self._is_echo(event)
            ]
            if not fresh:
                return 0
            for event in fresh:
                self._recovered[event["event_id"]] = None
            while len(self._recovered) > RECOVERED_KEPT:
                del self._recovered[next(iter(self._recovered))]
            key = transaction_key("recovered", fresh)
            if await self._log.store_transaction(key, fresh):
                await self._stored(StoredTransaction(key, fresh))
        self._meter.events_recovered(len(fresh))
        return len(fresh)

    def _is_echo(self, event: dict[str, Any]) -> bool:
        sender = event.get("sender")
        return isinstance(sender, str) and self._names.is_ours(sender)

    async def resume(self) -> None:
        """Queue what the store holds unapplied (a previous run's or another replica's)."""
        for transaction in await self._log.unprocessed_transactions():
            self._enqueue(transaction)

    def let_go(self) -> None:
        """The duty went to another replica: what is queued here is its to apply."""
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queued.clear()

    async def _stored(self, transaction: StoredTransaction) -> None:
        if self._duties.alone:
            self._enqueue(transaction)
        elif self._duties.holds(APPSERVICE_DUTY):
            await self.resume()  # this one, and any another replica stored before it
        else:
            self._duties.tell_holder(APPSERVICE_DUTY, transaction.txn_id)

    def _look_soon(self) -> None:
        """Queue from the store soon; tellings that come meanwhile share one look."""
        self._look_again = True
        if self._looker is None or self._looker.done():
            self._looker = self._tasks.spawn(self._look(), name="appservice-look")

    async def _look(self) -> None:
        attempt = 0
        while self._look_again:
            self._look_again = False
            try:
                await self.resume()
                attempt = 0
            except Exception as error:
                delay = self._backoff.delay(attempt)
                attempt += 1
                logger.warning(
                    "Looking for stored transactions failed (%r); again in %.1f s", error, delay
                )
                await asyncio.sleep(delay)
                self._look_again = True

    def _enqueue(self, transaction: StoredTransaction) -> None:
        if transaction.txn_id in self._queued:
            return
        self._queued[transaction.txn_id] = None
        while len(self._queued) > QUEUED_KEPT:
            del self._queued[next(iter(self._queued))]
        self._idle.clear()
        self._queue.put_nowait(transaction)
        if self._worker is None:
            self._worker = self._tasks.spawn(self._work(), name="appservice-transactions")

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def _work(self) -> None:
        try:
            while not self._queue.empty() and self._duties.holds(APPSERVICE_DUTY):
                await self._apply(self._queue.get_nowait())
        finally:
            self._worker = None
            if not self._duties.holds(APPSERVICE_DUTY):
                self.let_go()
            if self._queue.empty():
                self._idle.set()
            else:
                self._worker = self._tasks.spawn(self._work(), name="appservice-transactions")

    async def _apply(self, transaction: StoredTransaction) -> None:
        # The events are in hand: stored before the homeserver heard 200, applied from memory.
        txn_id = transaction.txn_id
        for event in transaction.events:
            await self._apply_until_done(event, txn_id)
        await self._until_done(lambda: self._log.mark_transaction_processed(txn_id), txn_id)

    async def _apply_until_done(self, event: dict[str, Any], txn_id: str) -> None:
        """Apply the event; while the store or the homeserver is away, wait and try again
        (applying twice is harmless: seller events are known by their ids), so that the
        events after it keep their order. An event that fails on its own is logged and
        left, so as not to hold back the ones after it."""
        try:
            await self._until_done(lambda: self.apply_event(event), txn_id)
        except Exception:
            logger.exception(
                "Failed to apply %s %s of transaction %s",
                event.get("type"),
                event.get("event_id"),
                txn_id,
            )

    async def _until_done(self, work: Callable[[], Awaitable[None]], txn_id: str) -> None:
        """Run `work`, waiting out outages for up to OUTAGE_PATIENCE: past that, a homeserver
        answering 5xx to this one request would hold every later event back for good."""
        attempt = 0
        waited = 0.0
        while True:
            try:
                await work()
                return
            except Exception as error:
                if not self._is_outage(error) or waited >= OUTAGE_PATIENCE:
                    raise
                delay = self._backoff.delay(attempt)
                logger.warning(
                    "Transaction %s waits %.1f s for the store or the homeserver: %r",
                    txn_id,
                    delay,
                    error,
                )
                await asyncio.sleep(delay)
                waited += delay
                attempt += 1

    async def apply_event(self, raw: dict[str, Any]) -> None:
        if "state_key" in raw:
            await self._rooms.states.observe(raw)
            if self._is_echo(raw):
                return
        for event in parse_event(raw, self._names.is_ours):
            await self._apply_one(event)

    async def _apply_one(self, event: RoomEvent) -> None:
        if isinstance(event, MembershipChange):
            if event.membership == "join" and event.subject == event.sender:
                self._rooms.remember_display_name(event.sender, event.display_name)
            if self._names.is_ours(event.subject):
                return
        room = await self._directory.classify_room(event.room_id)
        if isinstance(room, ConversationRoom):
            await self._in_conversation(room.conversation, event)
        elif isinstance(event, RoomMessage) and event.attachment is None:
            if isinstance(room, ManagementRoom):
                await self._replies.on_management_message(room, event)
            elif isinstance(room, SiteRoom) and room.purpose == ADMIN_ROOM:
                await self._broadcasts.on_admin_command(room, event)

    async def _in_conversation(self, conversation: Conversation, event: RoomEvent) -> None:
        replies = self._replies
        match event:
            case RoomMessage():
                await replies.on_message(conversation, event)
            case MessageEdit():
                await replies.on_edit(conversation, event)
            case Redaction():
                await replies.on_redaction(conversation, event)
            case MembershipChange():
                await replies.on_membership(conversation, event)
            case PowerLevelsChange():
                await replies.on_power_levels(conversation, event)
            case ReadReceipt():
                await replies.on_read(conversation, event)
            case TypingChange():
                await replies.on_typing(conversation, event)
