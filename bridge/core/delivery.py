"""The courier: carries stored buyer messages into Matrix, in order per conversation.

Each conversation with work has at most one worker task; a wake-up while the worker runs
makes it look again before it stops, so nothing stored is left behind. An unreachable
homeserver delays delivery with a capped backoff; a refusal marks the message failed, with
the reason. A send whose answer was lost may have reached the room all the same, and the
homeserver's memory of its transaction id does not outlive a restart of the homeserver: so
the courier looks in the room before it sends such a message again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Protocol, TypeVar

from bridge.core.duties import DELIVERY_DUTIES, Duties, SoleDuties, delivery_duty
from bridge.core.events import Announcer
from bridge.core.ids import ConversationID, EventID, MessageID, SiteID
from bridge.core.lanes import bulk_work
from bridge.core.metrics import NO_METER, Direction, Meter
from bridge.core.models import Attachment, Buyer, Conversation, Message, Site
from bridge.core.ports import (
    HomeserverUnavailable,
    MatrixPort,
    MatrixRejected,
    MediaPort,
)
from bridge.core.storage import ConversationRecords, MessageDelivery, Parties, RoomUpkeep
from bridge.core.tasks import TaskKeeper
from bridge.core.team import AnsweringRoles
from bridge.core.translation import Translations

logger = logging.getLogger(__name__)

T = TypeVar("T")
# How often a replica whose caller waits for a room another replica makes looks for it.
ELSEWHERE_LOOK_SECONDS = 0.05


class CourierStore(Parties, ConversationRecords, RoomUpkeep, MessageDelivery, Protocol):
    """The store as the courier uses it."""


class _Undeliverable(Exception):
    """The message can't reach the room as it is: it fails, saying why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Backoff:
    first: float = 0.5
    factor: float = 2.0
    longest: float = 30.0

    def delay(self, attempt: int) -> float:
        return float(min(self.first * self.factor**attempt, self.longest))


class Courier:
    def __init__(
        self,
        store: CourierStore,
        matrix: MatrixPort,
        sites: Mapping[SiteID, Site],
        answering: AnsweringRoles,
        tasks: TaskKeeper,
        announcer: Announcer,
        translations: Translations,
        media: MediaPort,
        backoff: Backoff = Backoff(),
        provision_timeout: float = 15.0,
        after_delivery: Callable[[Conversation], Awaitable[None]] | None = None,
        meter: Meter = NO_METER,
        duties: Duties | None = None,
    ) -> None:
        self._store = store
        # Each conversation's deliveries are one shard's duty (`core/duties.py`): done here
        # while this replica holds it, else told to the replica that does.
        self._duties = duties or SoleDuties()
        for duty in DELIVERY_DUTIES:
            self._duties.hear(duty, self._told)
        self._meter = meter
        self._matrix = matrix
        self._sites = sites
        self._answering = answering
        self._tasks = tasks
        self._announcer = announcer
        self._backoff = backoff
        self._provision_timeout = provision_timeout
        self._translations = translations
        self._media = media
        # What follows the buyer messages into the room (the automatic messages' notices,
        # core/auto_replies.py): run after each round of deliveries, retried like a send.
        self._after_delivery = after_delivery
        self._workers: dict[ConversationID, asyncio.Task[None]] = {}
        self._dirty: set[ConversationID] = set()
        self._stale_context: set[ConversationID] = set()
        self._stale_members: set[ConversationID] = set()
        self._room_locks: dict[ConversationID, asyncio.Lock] = {}
        # Messages whose last send may have reached the room, its answer lost.
        self._unsure: set[MessageID] = set()
        # Conversations an earlier run left with pending messages: it may have sent some
        # and not lived to record them.
        self._resumed: set[ConversationID] = set()
        self._looking: asyncio.Task[None] | None = None

    async def resume(self, shards: frozenset[str] | None = None) -> None:
        """Pick up what an earlier run (or the replica that held these `shards` of the
        deliveries before; None: all) left: rooms not made, messages not delivered, members
        not yet brought in line."""
        for conversation in await self._store.conversations_needing_delivery():
            if shards is None or delivery_duty(conversation.conversation_id) in shards:
                if conversation.room_id is not None:
                    self._resumed.add(conversation.conversation_id)
                self.wake(conversation.conversation_id)
        for conversation_id in await self._store.conversations_with_stale_members():
            if shards is None or delivery_duty(conversation_id) in shards:
                self._stale_members.add(conversation_id)
                self.wake(conversation_id)

    def wake(self, conversation_id: ConversationID) -> None:
        if not self._here(conversation_id, "deliver"):
            return
        self._dirty.add(conversation_id)
        if conversation_id not in self._workers:
            self._workers[conversation_id] = self._tasks.spawn(
                self._work(conversation_id), name=f"courier:{conversation_id}"
            )

    def refresh_context(self, conversation_id: ConversationID) -> None:
        if self._here(conversation_id, "context"):
            self._stale_context.add(conversation_id)
            self.wake(conversation_id)

    async def refresh_members(self, conversation_ids: Sequence[ConversationID]) -> None:
        """Bring the rooms' membership and power levels back to what the seller's roles and
        the blocks say; noted in the store first, so a restart finishes the work."""
        await self._store.mark_members_stale(conversation_ids, True)
        for conversation_id in conversation_ids:
            if self._here(conversation_id, "members"):
                self._stale_members.add(conversation_id)
                self.wake(conversation_id)

    def _here(self, conversation_id: ConversationID, work: str) -> bool:
        """Whether the conversation's deliveries are this replica's; if not, its holder is
        told of the `work`."""
        duty = delivery_duty(conversation_id)
        if self._duties.holds(duty):
            return True
        self._duties.tell_holder(duty, f"{work} {conversation_id}")
        return False

    def _told(self, detail: str) -> None:
        """Another replica's word for a conversation of a shard held here; "" when words may
        have been missed: the shard's owed work is looked up again."""
        work, _, conversation_id = detail.partition(" ")
        if not conversation_id:
            # Every shard held hears "" at once: one look in the store serves them all.
            if self._looking is None or self._looking.done():
                held = frozenset(duty for duty in DELIVERY_DUTIES if self._duties.holds(duty))
                self._looking = self._tasks.spawn(self.resume(held), name="courier-look-again")
            return
        conversation = ConversationID(conversation_id)
        if work == "context":
            self._stale_context.add(conversation)
        elif work == "members":
            self._stale_members.add(conversation)
        self.wake(conversation)

    @property
    def busy(self) -> bool:
        return bool(self._workers)

    async def provision_now(self, conversation: Conversation) -> Conversation:
        """Make the room while the caller waits, within a time limit; else leave it to a worker
        (the replica holding the conversation's deliveries, when they are another's)."""
        if not self._here(conversation.conversation_id, "deliver"):
            return await self._made_elsewhere(conversation)
        try:
            async with asyncio.timeout(self._provision_timeout):
                return await self._ensure_room(conversation)
        except (HomeserverUnavailable, MatrixRejected, TimeoutError) as error:
            logger.warning(
                "Room for %s not made yet, will retry: %s", conversation.conversation_id, error
            )
            self.wake(conversation.conversation_id)
            return conversation

    async def _made_elsewhere(self, conversation: Conversation) -> Conversation:
        """The conversation as the store has it once the holder made its room, or as it was
        when the time limit passed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._provision_timeout):
                while True:
                    stored = await self._store.get_conversation_by_id(conversation.conversation_id)
                    if stored is not None and stored.room_id is not None:
                        return stored
                    await asyncio.sleep(ELSEWHERE_LOOK_SECONDS)
        return conversation

    async def _work(self, conversation_id: ConversationID) -> None:
        duty = delivery_duty(conversation_id)
        try:
            # A shard let go (the store's connection lost) stops here: its new holder
            # starts from what the store says.
            while conversation_id in self._dirty and self._duties.holds(duty):
                self._dirty.discard(conversation_id)
                await self._deliver_all(conversation_id)
        finally:
            del self._workers[conversation_id]

    async def _deliver_all(self, conversation_id: ConversationID) -> None:
        stored = await self._store.get_conversation_by_id(conversation_id)
        if stored is None:
            return
        conversation = stored
        if stored.room_id is None:
            try:
                conversation = await self._retrying(
                    partial(self._ensure_room, stored), refusals=True
                )
            except MatrixRejected as error:
                # Refused for good (a ghost id Matrix won't take): no room will ever be made
                # from this, so the messages waiting for it fail, saying why.
                await self._fail_pending(stored, f"The conversation's room can't be made: {error}")
                return
        if conversation_id in self._stale_context:
            self._stale_context.discard(conversation_id)
            await self._retrying(partial(self._push_context, conversation_id))
        if conversation_id in self._stale_members:
            self._stale_members.discard(conversation_id)
            # A role change or a block reaches every room of a seller: bulk work, which a
            # live message to anyone else goes ahead of.
            with bulk_work():
                await self._retrying(partial(self._push_members, conversation))
            if conversation_id not in self._stale_members:  # no newer change came meanwhile
                await self._store.mark_members_stale([conversation_id], False)
        pending = await self._store.pending_messages(conversation_id)
        if not pending:
            self._resumed.discard(conversation_id)
            await self._follow_up(conversation)
            return
        buyer = await self._store.get_buyer(conversation.site, conversation.buyer_id)
        if buyer is None:
            raise LookupError(f"{conversation_id} lost its buyer")
        # What a restart found waiting is a backlog: messages written since go first.
        backlog = conversation_id in self._resumed
        if backlog:
            pending = await self._not_yet_in_room(conversation, buyer, pending)
            self._resumed.discard(conversation_id)
        reader = await self._translated_for(conversation)
        recording: asyncio.Task[None] | None = None
        lane = bulk_work() if backlog else contextlib.nullcontext()
        try:
            with lane:
                for message in pending:
                    outcome: EventID | _Undeliverable
                    try:
                        ready = await self._retrying(
                            partial(self._prepare, conversation, buyer, message, reader)
                        )
                        outcome = await self._send(conversation, buyer, ready)
                    except _Undeliverable as refusal:
                        outcome = refusal
                    # Sends stay one at a time, which keeps the room's order; the store records
                    # the previous message while this one travels.
                    if recording is not None:
                        await recording
                    recording = asyncio.create_task(
                        self._record_or_doubt(conversation, message, outcome)
                    )
        finally:
            if recording is not None:
                await recording
        await self._follow_up(conversation)

    async def _record_or_doubt(
        self, conversation: Conversation, message: Message, outcome: EventID | _Undeliverable
    ) -> None:
        """Record the outcome; if the store fails to, a sent message stays pending, and the
        next worker must look in the room before sending it again: the homeserver may have
        forgotten the transaction id by then (found by the fault suite, as duplicates after
        a store that ran out of connections and a Synapse restart)."""
        try:
            await self._record(conversation, message, outcome)
        except BaseException:
            if not isinstance(outcome, _Undeliverable):
                self._unsure.add(message.message_id)
            raise

    async def _follow_up(self, conversation: Conversation) -> None:
        if self._after_delivery is not None:
            await self._retrying(partial(self._after_delivery, conversation))

    async def _fail_pending(self, conversation: Conversation, reason: str) -> None:
        for message in await self._store.pending_messages(conversation.conversation_id):
            await self._record(conversation, message, _Undeliverable(reason))

    async def _not_yet_in_room(
        self, conversation: Conversation, buyer: Buyer, pending: list[Message]
    ) -> list[Message]:
        """The pending messages an earlier run did not get into the room; those it did are
        recorded as sent. One look covers them all, back to the oldest one's creation."""
        try:
            found = await self._retrying(
                partial(
                    self._matrix.find_buyer_messages,
                    conversation,
                    buyer,
                    [message.message_id for message in pending],
                    pending[0].created_at,
                )
            )
        except MatrixRejected as error:
            logger.warning(
                "Could not look in the room of %s: %s", conversation.conversation_id, error
            )
            return pending
        for message in pending:
            if message.message_id in found:
                logger.info("Message %s was in the room already", message.message_id)
                await self._record(conversation, message, found[message.message_id])
        return [message for message in pending if message.message_id not in found]

    async def _retrying(self, attempt: Callable[[], Awaitable[T]], *, refusals: bool = False) -> T:
        """Run `attempt` until it succeeds; a refusal is retried too when `refusals` is set
        (a room must exist before anything else can happen, and the cause may be fixed),
        unless it is permanent: then no try will ever succeed, and it is raised."""
        tries = 0
        while True:
            try:
                return await attempt()
            except HomeserverUnavailable as error:
                failure: Exception = error
            except MatrixRejected as error:
                if not refusals or error.permanent:
                    raise
                failure = error
            await self._wait(tries, failure)
            tries += 1

    async def _wait(self, tries: int, failure: Exception) -> None:
        delay = self._backoff.delay(tries)
        logger.warning("%s; retrying in %.1fs", failure, delay)
        await asyncio.sleep(delay)

    async def _ensure_room(self, conversation: Conversation) -> Conversation:
        lock = self._room_locks.setdefault(conversation.conversation_id, asyncio.Lock())
        async with lock:
            current = await self._store.get_conversation_by_id(conversation.conversation_id)
            if current is not None and current.room_id is not None:
                return current
            seller = await self._store.get_seller(conversation.site, conversation.seller_id)
            buyer = await self._store.get_buyer(conversation.site, conversation.buyer_id)
            if seller is None or buyer is None:
                raise LookupError(f"{conversation.conversation_id} lost its seller or buyer")
            room_id = await self._matrix.create_conversation_room(
                conversation,
                seller,
                buyer,
                self._answering.members(seller),
                self._sites[conversation.site].name,
            )
            await self._store.set_room(conversation.conversation_id, room_id)
            self._room_locks.pop(conversation.conversation_id, None)
            return replace(conversation, room_id=room_id)

    async def _push_members(self, conversation: Conversation) -> None:
        seller = await self._store.get_seller(conversation.site, conversation.seller_id)
        buyer = await self._store.get_buyer(conversation.site, conversation.buyer_id)
        if seller is None or buyer is None:
            return
        current = await self._store.get_conversation_by_id(conversation.conversation_id)
        try:
            await self._matrix.sync_members(
                current or conversation,
                seller,
                buyer,
                self._answering.members(seller),
                self._sites[conversation.site].name,
            )
        except MatrixRejected as error:
            logger.warning(
                "Could not bring %s's members in line: %s", conversation.conversation_id, error
            )

    async def _push_context(self, conversation_id: ConversationID) -> None:
        conversation = await self._store.get_conversation_by_id(conversation_id)
        if conversation is None or conversation.room_id is None:
            return
        buyer = await self._store.get_buyer(conversation.site, conversation.buyer_id)
        if buyer is not None:
            await self._matrix.update_context(conversation, buyer)

    async def _translated_for(self, conversation: Conversation) -> str | None:
        """The language the seller reads, when the conversation's messages are translated."""
        if not (self._translations.enabled and conversation.translation_enabled):
            return None
        seller = await self._store.get_seller(conversation.site, conversation.seller_id)
        return seller.language if seller else None

    async def _prepare(
        self, conversation: Conversation, buyer: Buyer, message: Message, reader: str | None
    ) -> Message:
        """Translate the message for the seller (`reader`: their language, None for no
        translation) and put its files in the homeserver's media repository, recording both
        so a retry doesn't repeat them; raises _Undeliverable when it can't go."""
        if message.translation is None and reader is not None:
            message = await self._translate(conversation, message, reader)
        if all(attachment.mxc is not None for attachment in message.attachments):
            return message
        uploaded = []
        for attachment in message.attachments:
            if attachment.mxc is not None:
                uploaded.append(attachment)
                continue
            try:
                uploaded.append(await self._upload(buyer, attachment))
            except LookupError as error:
                raise _Undeliverable(f"The file can't be sent: {error}") from error
            except MatrixRejected as error:
                # Refused for good (the homeserver's own size limit may be lower than ours).
                raise _Undeliverable(f"The homeserver refused the file: {error}") from error
        return await self._store.set_attachments(message.message_id, uploaded)

    async def _translate(
        self, conversation: Conversation, message: Message, reader: str
    ) -> Message:
        rendering = await self._translations.render(message.text, message.lang, reader)
        if rendering.note is None:
            return message
        return await self._store.set_rendering(
            message.message_id,
            rendering.text,
            rendering.original,
            rendering.note,
            self._announcer.message_changed(conversation, "message.updated"),
        )

    async def _upload(self, buyer: Buyer, attachment: Attachment) -> Attachment:
        if attachment.sha256 is None:
            raise LookupError(f"attachment {attachment.attachment_id} has no stored bytes")
        data = await self._media.read(attachment.sha256)
        if data is None:
            raise LookupError(f"the bytes of {attachment.attachment_id} are gone from the store")
        mxc = await self._matrix.upload_as_buyer(
            buyer, data, attachment.content_type, attachment.name
        )
        thumbnail = attachment.thumbnail
        if thumbnail is not None and thumbnail.sha256 is not None and thumbnail.mxc is None:
            small = await self._media.read(thumbnail.sha256)
            if small is not None:
                thumbnail = replace(
                    thumbnail,
                    mxc=await self._matrix.upload_as_buyer(
                        buyer, small, thumbnail.content_type, f"thumbnail-{attachment.name}"
                    ),
                )
        return replace(attachment, mxc=mxc, thumbnail=thumbnail)

    async def _send(self, conversation: Conversation, buyer: Buyer, message: Message) -> EventID:
        """The message's event id in the room, sending until the homeserver answers; raises
        _Undeliverable when it refuses.

        The transaction id makes a repeated send harmless only while the homeserver
        remembers it, and Synapse forgets on restart; so after an attempt whose answer was
        lost, the room is looked at before the next one."""
        message_id = message.message_id
        tries = 0
        while True:
            try:
                if message_id in self._unsure:
                    found = await self._in_room(conversation, buyer, message)
                    self._unsure.discard(message_id)
                    if found is not None:
                        return found
                return await self._matrix.send_buyer_message(conversation, buyer, message)
            except HomeserverUnavailable as error:
                if error.maybe_done:
                    self._unsure.add(message_id)
                await self._wait(tries, error)
                tries += 1
            except MatrixRejected as error:
                self._unsure.discard(message_id)
                raise _Undeliverable(f"The homeserver refused the message: {error}") from error

    async def _in_room(
        self, conversation: Conversation, buyer: Buyer, message: Message
    ) -> EventID | None:
        try:
            found = await self._matrix.find_buyer_messages(
                conversation, buyer, [message.message_id], message.created_at
            )
        except MatrixRejected as error:
            # A room the bot can't read: a send is all that is left to try.
            logger.warning("Could not look for %s in its room: %s", message.message_id, error)
            return None
        if message.message_id in found:
            logger.info(
                "Message %s reached the room before its answer was lost", message.message_id
            )
        return found.get(message.message_id)

    async def _record(
        self, conversation: Conversation, message: Message, outcome: EventID | _Undeliverable
    ) -> None:
        status_event = self._announcer.message_changed(conversation, "message.status")
        if isinstance(outcome, _Undeliverable):
            logger.warning("Message %s failed: %s", message.message_id, outcome.reason)
            await self._store.mark_failed(message.message_id, outcome.reason, status_event)
            self._meter.message_failed(Direction.BUYER_TO_SELLER)
        else:
            await self._store.mark_delivered(message.message_id, outcome, status_event)
            waited = datetime.now(UTC) - message.created_at
            self._meter.message_sent(Direction.BUYER_TO_SELLER, waited.total_seconds())
        self._announcer.published(conversation)
