"""Erasing a buyer at their request (GDPR art. 17) and giving them all the bridge holds
about them (art. 15 and 20).

The database part of an erasure happens at once, in one transaction that also records
what Matrix still owes: the redaction of the buyer's events and the erased profile in
their rooms. A worker does that part, retrying while the homeserver is away; a restart
finds the record and finishes it. Anonymous figures (conversations, message counts,
response-time waits) stay.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import zipfile
from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bridge.core.duties import Duties, SoleDuties
from bridge.core.ids import BuyerID, ConversationID, EventID, MessageID, RoomID, SiteID
from bridge.core.models import Buyer, Conversation, Message, SenderKind
from bridge.core.ports import HomeserverUnavailable, MatrixRejected
from bridge.core.views import buyer_json, conversation_json, message_json
from bridge.errors import NotFound, TooLarge

logger = logging.getLogger(__name__)

ERASED_NAME = "Erased buyer"
ERASURE_REASON = "erased at the buyer's request"
# An export is built in memory, so it has a ceiling; past it the answer is 413.
MAX_EXPORT_BYTES = 200 * 1024 * 1024
EXPORT_PAGE = 200
# Synapse tells the bridge of its own redactions and state changes a moment later, and
# those transactions carry the replaced state (the old name, the old profile) in
# `unsigned.prev_content`: the worker waits this long before it forgets them.
SETTLE_SECONDS = 5.0
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Erasure:
    """What Matrix and the media store still owe for one erased buyer."""

    site: SiteID
    buyer_id: BuyerID
    redactions: tuple[tuple[RoomID, EventID], ...]
    conversations: tuple[ConversationID, ...]
    files: tuple[str, ...]


class ErasureStore(Protocol):
    async def get_buyer(self, site: SiteID, buyer_id: BuyerID) -> Buyer | None: ...

    async def erase_buyer(self, site: SiteID, buyer_id: BuyerID, name: str) -> Erasure:
        """In one transaction: record the erasure, empty the buyer's messages, remove
        their personal fields, tokens, queued mail, feed, translations and webhooks."""

    async def unfinished_erasures(self) -> list[Erasure]: ...

    async def files_in_use(self, sha256s: Collection[str]) -> set[str]:
        """Which of these blobs a message or a template still refers to."""

    async def forget_room_transactions(self, room_ids: Collection[RoomID]) -> None:
        """Empty the processed appservice transactions of these rooms (copies of events)."""

    async def finish_erasure(self, site: SiteID, buyer_id: BuyerID, error: str | None) -> None:
        """Mark the Matrix part done; with `error`, only note why it isn't yet."""

    async def get_conversation_by_id(
        self, conversation_id: ConversationID
    ) -> Conversation | None: ...

    async def list_conversations(
        self, site: SiteID, *, buyer_id: BuyerID | None = None
    ) -> list[Conversation]: ...

    async def list_messages(
        self, conversation_id: ConversationID, *, after: MessageID | None, limit: int
    ) -> list[Message]: ...


class ErasedRooms(Protocol):
    """The Matrix side of an erasure."""

    async def redact(self, room_id: RoomID, event_id: EventID, reason: str) -> None: ...

    async def show_erased(self, conversation: Conversation, buyer: Buyer) -> None:
        """The room's profile state, name, and the ghost's name and avatar show the erased
        buyer; the bot's card of the old profile is redacted."""


class ErasedFiles(Protocol):
    async def read(self, sha256: str) -> bytes | None: ...

    async def forget(self, sha256: str) -> None:
        """Delete the blob from the bridge's media store (gone already is fine)."""


# The duty of following erasures through in Matrix (`core/duties.py`).
ERASURE_DUTY = "erasure"

Spawn = Callable[[Coroutine[Any, Any, None], str], object]


class BuyerErasure:
    def __init__(
        self,
        store: ErasureStore,
        rooms: ErasedRooms,
        files: ErasedFiles,
        spawn: Spawn,
        retry_delay: Callable[[int], float],
        settle_seconds: float = SETTLE_SECONDS,
        duties: Duties | None = None,
    ) -> None:
        self._store = store
        # The Matrix side of every erasure is one replica's duty: the others tell it.
        self._duties = duties or SoleDuties()
        self._duties.hear(ERASURE_DUTY, self._look_again)
        self._rooms = rooms
        self._files = files
        self._spawn = spawn
        self._retry_delay = retry_delay
        self._settle_seconds = settle_seconds
        self._running: set[tuple[SiteID, BuyerID]] = set()

    async def erase(self, site: SiteID, buyer_id: BuyerID) -> None:
        """Erase the buyer; a buyer erased before is erased again (anything new since)."""
        if await self._store.get_buyer(site, buyer_id) is None:
            raise NotFound(f"Unknown buyer '{buyer_id}'", "BAZAAR_UNKNOWN_BUYER")
        erasure = await self._store.erase_buyer(site, buyer_id, ERASED_NAME)
        # The files go at once: they need no homeserver.
        await self._forget_files(erasure)
        logger.info("Erased buyer %s of %s; Matrix follows", buyer_id, site)
        if self._duties.holds(ERASURE_DUTY):
            self._start(erasure)
        else:
            self._duties.tell_holder(ERASURE_DUTY)

    async def resume(self) -> None:
        """Finish the erasures a previous run left with Matrix work owed."""
        for erasure in await self._store.unfinished_erasures():
            self._start(erasure)

    def _look_again(self, _detail: str) -> None:
        """Another replica erased a buyer (or word of one may have been lost)."""
        self._spawn(self.resume(), "erasure-look-again")

    def _start(self, erasure: Erasure) -> None:
        key = (erasure.site, erasure.buyer_id)
        if key in self._running:
            # The running worker reads the record again before it finishes.
            return
        self._running.add(key)
        self._spawn(self._follow_in_matrix(erasure), f"erasure:{erasure.site}/{erasure.buyer_id}")

    async def _forget_files(self, erasure: Erasure) -> None:
        # Checked now, not at the erasure: a message since may share the same bytes.
        in_use = await self._store.files_in_use(erasure.files)
        for sha256 in erasure.files:
            if sha256 not in in_use:
                await self._files.forget(sha256)

    async def _follow_in_matrix(self, erasure: Erasure) -> None:
        key = (erasure.site, erasure.buyer_id)
        attempt = 0
        try:
            while True:
                try:
                    await self._forget_files(erasure)
                    await self._matrix_part(erasure)
                except HomeserverUnavailable as error:
                    await self._store.finish_erasure(erasure.site, erasure.buyer_id, str(error))
                    delay = self._retry_delay(attempt)
                    attempt += 1
                    logger.warning(
                        "Erasure of %s waits for the homeserver (%s); again in %.0fs",
                        erasure.buyer_id,
                        error,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                # A second DELETE may have come meanwhile with more to do.
                again = [
                    e
                    for e in await self._store.unfinished_erasures()
                    if (e.site, e.buyer_id) == key and e != erasure
                ]
                if again:
                    erasure = again[0]
                    continue
                await self._store.finish_erasure(erasure.site, erasure.buyer_id, None)
                logger.info("Erasure of buyer %s of %s done in Matrix", erasure.buyer_id, key[0])
                return
        finally:
            self._running.discard(key)

    async def _matrix_part(self, erasure: Erasure) -> None:
        for room_id, event_id in erasure.redactions:
            try:
                await self._rooms.redact(room_id, event_id, ERASURE_REASON)
            except MatrixRejected as error:
                # A room the bot has left, an event already gone: nothing more to do there.
                logger.warning("Redaction of %s in %s refused: %s", event_id, room_id, error)
        buyer = await self._store.get_buyer(erasure.site, erasure.buyer_id)
        rooms: list[RoomID] = []
        for conversation_id in erasure.conversations:
            conversation = await self._store.get_conversation_by_id(conversation_id)
            if buyer is None or conversation is None or conversation.room_id is None:
                continue
            rooms.append(conversation.room_id)
            try:
                await self._rooms.show_erased(conversation, buyer)
            except MatrixRejected as error:
                logger.warning("Room %s keeps the old profile: %s", conversation.room_id, error)
        await asyncio.sleep(self._settle_seconds)
        await self._store.forget_room_transactions(rooms)


class BuyerExport:
    """Everything about a buyer as one zip: `buyer.json`, `conversations/<id>.json` (both
    sides' messages, as the marketplace API shows them) and the buyer's files under `files/`.

    Built in memory up to `MAX_EXPORT_BYTES` (413 past it): simple, and a buyer's files are
    each at most one upload's limit."""

    def __init__(self, store: ErasureStore, files: ErasedFiles, max_bytes: int = MAX_EXPORT_BYTES):
        self._store = store
        self._files = files
        self._max_bytes = max_bytes

    async def export(self, site: SiteID, buyer_id: BuyerID) -> bytes:
        buyer = await self._store.get_buyer(site, buyer_id)
        if buyer is None:
            raise NotFound(f"Unknown buyer '{buyer_id}'", "BAZAAR_UNKNOWN_BUYER")
        entries: list[tuple[str, bytes]] = [("buyer.json", _json(buyer_json(buyer)))]
        total = 0
        for conversation in await self._store.list_conversations(site, buyer_id=buyer_id):
            messages = await self._all_messages(conversation.conversation_id)
            document = {
                "conversation": conversation_json(conversation),
                "messages": [message_json(message) for message in messages],
            }
            entries.append((f"conversations/{conversation.conversation_id}.json", _json(document)))
            for message in messages:
                if message.sender is not SenderKind.BUYER:
                    continue
                for attachment in message.attachments:
                    if attachment.sha256 is None:
                        continue
                    data = await self._files.read(attachment.sha256)
                    if data is None:
                        continue
                    total += len(data)
                    if total > self._max_bytes:
                        raise TooLarge(
                            f"The export would pass {self._max_bytes} bytes",
                            "BAZAAR_EXPORT_TOO_LARGE",
                        )
                    name = _SAFE_NAME.sub("_", attachment.name).strip("._") or "file"
                    entries.append(
                        (
                            f"files/{conversation.conversation_id}/"
                            f"{message.message_id}-{attachment.attachment_id}-{name}",
                            data,
                        )
                    )
        return await asyncio.to_thread(_zip, entries)

    async def _all_messages(self, conversation_id: ConversationID) -> list[Message]:
        messages: list[Message] = []
        after: MessageID | None = None
        while True:
            page = await self._store.list_messages(conversation_id, after=after, limit=EXPORT_PAGE)
            messages.extend(page)
            if len(page) < EXPORT_PAGE:
                return messages
            after = page[-1].message_id


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2).encode()


def _zip(entries: Sequence[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()
