"""Applies stored appservice transactions, in the order they arrived, once each."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from bridge.core.broadcast import Broadcasts
from bridge.core.ids import EventID, RoomID, UserID
from bridge.core.models import Attachment, AttachmentKind, Thumbnail
from bridge.core.ports import Repository, StoredTransaction
from bridge.core.replies import SellerReplies
from bridge.core.tasks import TaskKeeper
from bridge.matrix.gateway import parse_mxc
from bridge.matrix.html import clean_html
from bridge.matrix.identifiers import MatrixNames
from bridge.matrix.rooms import MatrixRooms
from bridge.matrix.spaces import ADMIN_ROOM, SpaceMemory

logger = logging.getLogger(__name__)

TEXT_MSGTYPES = frozenset({"m.text", "m.notice", "m.emote"})


MEDIA_MSGTYPES = {
    "m.image": AttachmentKind.IMAGE,
    "m.file": AttachmentKind.FILE,
    "m.video": AttachmentKind.FILE,
    "m.audio": AttachmentKind.FILE,
}
MAX_NAME_CHARS = 255


def _attachment(content: dict[str, Any]) -> Attachment | None:
    """What a seller's media message says about its file; the bytes are fetched (and their
    type checked) only when a reader asks for them."""
    url = content.get("url")
    if not isinstance(url, str):
        return None  # an encrypted file, or none at all: conversation rooms aren't encrypted
    try:
        parse_mxc(url)
    except ValueError:
        return None
    raw_info = content.get("info")
    info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
    name = content.get("filename") or content.get("body") or "file"
    name = "".join(c for c in str(name) if c.isprintable())[:MAX_NAME_CHARS] or "file"
    thumbnail = None
    thumbnail_url = info.get("thumbnail_url")
    thumbnail_info = info.get("thumbnail_info")
    if isinstance(thumbnail_url, str) and isinstance(thumbnail_info, dict):
        try:
            parse_mxc(thumbnail_url)
            thumbnail = Thumbnail(
                content_type=str(thumbnail_info.get("mimetype", "image/jpeg")),
                width=_whole(thumbnail_info.get("w")) or 0,
                height=_whole(thumbnail_info.get("h")) or 0,
                size=_whole(thumbnail_info.get("size")) or 0,
                mxc=thumbnail_url,
            )
        except ValueError:
            thumbnail = None
    return Attachment(
        attachment_id="",
        kind=MEDIA_MSGTYPES[str(content.get("msgtype"))],
        name=name,
        content_type=str(info.get("mimetype") or "application/octet-stream")[:100],
        size=_whole(info.get("size")) or 0,
        mxc=url,
        width=_whole(info.get("w")),
        height=_whole(info.get("h")),
        thumbnail=thumbnail,
    )


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _reply_to(content: dict[str, Any]) -> EventID | None:
    relation = content.get("m.relates_to")
    reply = relation.get("m.in_reply_to") if isinstance(relation, dict) else None
    target = reply.get("event_id") if isinstance(reply, dict) else None
    return EventID(target) if isinstance(target, str) else None


def _without_reply_fallback(body: str) -> str:
    """Older clients quote the message replied to ('> <@someone> …') before the reply."""
    lines = body.split("\n")
    if not lines or not lines[0].startswith("> "):
        return body
    while lines and lines[0].startswith(">"):
        lines.pop(0)
    return "\n".join(lines).lstrip("\n")


def _html(content: dict[str, Any]) -> str | None:
    formatted = content.get("formatted_body")
    if content.get("format") != "org.matrix.custom.html" or not isinstance(formatted, str):
        return None
    return clean_html(formatted)


def _time(event: dict[str, Any]) -> datetime:
    ts = event.get("origin_server_ts")
    if isinstance(ts, int) and not isinstance(ts, bool):
        return datetime.fromtimestamp(ts / 1000, UTC)
    return datetime.now(UTC)


class TransactionProcessor:
    def __init__(
        self,
        repository: Repository,
        replies: SellerReplies,
        rooms: MatrixRooms,
        names: MatrixNames,
        spaces: SpaceMemory,
        broadcasts: Broadcasts,
        tasks: TaskKeeper,
    ) -> None:
        self._broadcasts = broadcasts
        self._repository = repository
        self._replies = replies
        self._rooms = rooms
        self._names = names
        self._spaces = spaces
        self._tasks = tasks
        self._queue: asyncio.Queue[StoredTransaction] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    async def accept(self, txn_id: str, events: list[dict[str, Any]]) -> None:
        """Store the transaction (a repeat is a no-op) and queue it; returns once stored.

        Echoes of what the bridge itself sent are dropped first: most transactions are
        nothing else, and they need neither storing nor applying.
        """
        events = [event for event in events if not self._is_echo(event)]
        if events and await self._repository.store_transaction(txn_id, events):
            self._enqueue(StoredTransaction(txn_id, events))

    def _is_echo(self, event: dict[str, Any]) -> bool:
        sender = event.get("sender")
        return isinstance(sender, str) and self._names.is_ours(sender)

    async def resume(self) -> None:
        for transaction in await self._repository.unprocessed_transactions():
            self._enqueue(transaction)

    def _enqueue(self, transaction: StoredTransaction) -> None:
        self._idle.clear()
        self._queue.put_nowait(transaction)
        if self._worker is None:
            self._worker = self._tasks.spawn(self._work(), name="appservice-transactions")

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def _work(self) -> None:
        try:
            while not self._queue.empty():
                await self._apply(self._queue.get_nowait())
        finally:
            self._worker = None
            if self._queue.empty():
                self._idle.set()
            else:
                self._worker = self._tasks.spawn(self._work(), name="appservice-transactions")

    async def _apply(self, transaction: StoredTransaction) -> None:
        # The events are in hand: stored before the homeserver heard 200, applied from memory.
        txn_id = transaction.txn_id
        for event in transaction.events:
            try:
                await self.apply_event(event)
            except Exception:
                # One broken event must not hold back the ones after it.
                logger.exception(
                    "Failed to apply %s %s of transaction %s",
                    event.get("type"),
                    event.get("event_id"),
                    txn_id,
                )
        await self._repository.mark_transaction_processed(txn_id)

    async def apply_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        sender = event.get("sender")
        room_id = event.get("room_id")
        content = event.get("content")
        if not isinstance(content, dict):
            return
        if isinstance(room_id, str) and kind in ("m.receipt", "m.typing"):
            await self._ephemeral(RoomID(room_id), kind, content)
            return
        if not isinstance(sender, str):
            return
        if kind == "m.room.member":
            await self._member(event, sender, content)
            return
        if kind == "m.room.power_levels" and isinstance(room_id, str):
            await self._replies.on_power_levels(RoomID(room_id), UserID(sender))
            return
        if not isinstance(room_id, str) or self._names.is_ours(sender):
            return
        if kind == "m.room.message":
            await self._message(RoomID(room_id), UserID(sender), event, content)
        elif kind == "m.room.redaction":
            redacts = event.get("redacts") or content.get("redacts")
            if isinstance(redacts, str):
                await self._replies.on_redaction(
                    RoomID(room_id), UserID(sender), EventID(redacts), _time(event)
                )

    async def _member(self, event: dict[str, Any], sender: str, content: dict[str, Any]) -> None:
        subject = event.get("state_key")
        room_id = event.get("room_id")
        membership = content.get("membership")
        if not isinstance(subject, str) or not isinstance(membership, str):
            return
        if membership == "join" and subject == sender:
            name = content.get("displayname")
            self._rooms.remember_display_name(
                UserID(sender), name if isinstance(name, str) and name else None
            )
        if isinstance(room_id, str) and not self._names.is_ours(subject):
            await self._replies.on_membership(RoomID(room_id), UserID(subject), membership)

    async def _message(
        self, room_id: RoomID, sender: UserID, event: dict[str, Any], content: dict[str, Any]
    ) -> None:
        event_id = event.get("event_id")
        if not isinstance(event_id, str):
            return
        relation = content.get("m.relates_to")
        if isinstance(relation, dict) and relation.get("rel_type") == "m.replace":
            new_content = content.get("m.new_content")
            target = relation.get("event_id")
            if (
                isinstance(new_content, dict)
                and isinstance(new_content.get("body"), str)
                and isinstance(target, str)
            ):
                await self._replies.on_edit(
                    room_id,
                    sender,
                    EventID(target),
                    new_content["body"],
                    _html(new_content),
                    _time(event),
                )
            return
        body = content.get("body")
        if not isinstance(body, str):
            return
        reply_to = _reply_to(content)
        if reply_to is not None:
            body = _without_reply_fallback(body)
        msgtype = content.get("msgtype")
        if msgtype in TEXT_MSGTYPES and body.strip():
            managed = await self._spaces.management_room_seller(room_id)
            if managed is not None:
                await self._replies.on_management_message(room_id, *managed, sender, body)
                return
            site_room = await self._spaces.site_room_purpose(room_id)
            if site_room is not None:
                site, purpose = site_room
                if purpose == ADMIN_ROOM:
                    await self._broadcasts.on_admin_command(room_id, site, sender, event_id, body)
                return
            await self._replies.on_message(
                room_id,
                sender,
                EventID(event_id),
                body,
                _html(content),
                _time(event),
                reply_to=reply_to,
            )
        elif msgtype in MEDIA_MSGTYPES and (attachment := _attachment(content)) is not None:
            # With a caption the body is the caption; without, it is the file's name.
            caption = body if content.get("filename") not in (None, body) else ""
            await self._replies.on_message(
                room_id,
                sender,
                EventID(event_id),
                caption,
                _html(content) if caption else None,
                _time(event),
                attachments=[attachment],
            )
        else:
            logger.info("Not relaying %s from %s: msgtype %r", event_id, sender, msgtype)

    async def _ephemeral(self, room_id: RoomID, kind: str, content: dict[str, Any]) -> None:
        if kind == "m.typing":
            user_ids = content.get("user_ids")
            if isinstance(user_ids, list):
                typing = frozenset(UserID(u) for u in user_ids if isinstance(u, str))
                await self._replies.on_typing(room_id, typing)
            return
        for event_id, receipts in content.items():
            readers = receipts.get("m.read") if isinstance(receipts, dict) else None
            if not isinstance(readers, dict):
                continue
            for reader in readers:
                if isinstance(reader, str) and not self._names.is_ours(reader):
                    await self._replies.on_read(room_id, UserID(reader), EventID(event_id))
