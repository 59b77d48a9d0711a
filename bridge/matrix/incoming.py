"""Each event of an appservice transaction, parsed once into the domain's typed records
(`core/room_events.py`). Matrix events are hostile input: anything malformed, or that the
bridge has no use for, parses to nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bridge.core.ids import EventID, RoomID, UserID
from bridge.core.models import Attachment, AttachmentKind, Thumbnail
from bridge.core.room_events import (
    MembershipChange,
    MessageEdit,
    PowerLevelsChange,
    ReadReceipt,
    Redaction,
    RoomEvent,
    RoomMessage,
    TypingChange,
)
from bridge.matrix.gateway import parse_mxc
from bridge.matrix.html import clean_html

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


def parse_event(event: dict[str, Any], is_ours: Callable[[str], bool]) -> list[RoomEvent]:
    """What one event says, for the bridge. A receipt event gives one record per reader;
    what the bridge's own users (`is_ours`) said or read gives none."""
    kind = event.get("type")
    sender = event.get("sender")
    room = event.get("room_id")
    content = event.get("content")
    if not isinstance(content, dict) or not isinstance(room, str):
        return []
    room_id = RoomID(room)
    if kind == "m.typing":
        return _typing(room_id, content)
    if kind == "m.receipt":
        return _receipts(room_id, content, is_ours)
    if not isinstance(sender, str):
        return []
    if kind == "m.room.member":
        return _membership(room_id, UserID(sender), event, content)
    if kind == "m.room.power_levels":
        return [PowerLevelsChange(room_id, UserID(sender))]
    if is_ours(sender):
        return []
    if kind == "m.room.message":
        return _message(room_id, UserID(sender), event, content)
    if kind == "m.room.redaction":
        redacts = event.get("redacts") or content.get("redacts")
        if isinstance(redacts, str):
            return [Redaction(room_id, UserID(sender), EventID(redacts), _time(event))]
    return []


def _membership(
    room_id: RoomID, sender: UserID, event: dict[str, Any], content: dict[str, Any]
) -> list[RoomEvent]:
    subject = event.get("state_key")
    membership = content.get("membership")
    if not isinstance(subject, str) or not isinstance(membership, str):
        return []
    name = content.get("displayname")
    own_join = membership == "join" and subject == sender
    return [
        MembershipChange(
            room_id,
            sender,
            UserID(subject),
            membership,
            name if own_join and isinstance(name, str) and name else None,
        )
    ]


def _message(
    room_id: RoomID, sender: UserID, event: dict[str, Any], content: dict[str, Any]
) -> list[RoomEvent]:
    event_id = event.get("event_id")
    if not isinstance(event_id, str):
        return []
    relation = content.get("m.relates_to")
    if isinstance(relation, dict) and relation.get("rel_type") == "m.replace":
        new_content = content.get("m.new_content")
        target = relation.get("event_id")
        if (
            isinstance(new_content, dict)
            and isinstance(new_content.get("body"), str)
            and isinstance(target, str)
        ):
            return [
                MessageEdit(
                    room_id,
                    sender,
                    EventID(target),
                    new_content["body"],
                    _html(new_content),
                    _time(event),
                )
            ]
        return []
    body = content.get("body")
    if not isinstance(body, str):
        return []
    reply_to = _reply_to(content)
    if reply_to is not None:
        body = _without_reply_fallback(body)
    msgtype = content.get("msgtype")
    if msgtype in TEXT_MSGTYPES and body.strip():
        return [
            RoomMessage(
                room_id,
                sender,
                EventID(event_id),
                body,
                _html(content),
                _time(event),
                reply_to=reply_to,
            )
        ]
    if msgtype in MEDIA_MSGTYPES and (attachment := _attachment(content)) is not None:
        # With a caption the body is the caption; without, it is the file's name.
        caption = body if content.get("filename") not in (None, body) else ""
        return [
            RoomMessage(
                room_id,
                sender,
                EventID(event_id),
                caption,
                _html(content) if caption else None,
                _time(event),
                attachment=attachment,
            )
        ]
    logger.info("Not relaying %s from %s: msgtype %r", event_id, sender, msgtype)
    return []


def _typing(room_id: RoomID, content: dict[str, Any]) -> list[RoomEvent]:
    user_ids = content.get("user_ids")
    if not isinstance(user_ids, list):
        return []
    return [TypingChange(room_id, frozenset(UserID(u) for u in user_ids if isinstance(u, str)))]


def _receipts(
    room_id: RoomID, content: dict[str, Any], is_ours: Callable[[str], bool]
) -> list[RoomEvent]:
    found: list[RoomEvent] = []
    for event_id, receipts in content.items():
        readers = receipts.get("m.read") if isinstance(receipts, dict) else None
        if not isinstance(readers, dict):
            continue
        found.extend(
            ReadReceipt(room_id, UserID(reader), EventID(event_id))
            for reader in readers
            if isinstance(reader, str) and not is_ours(reader)
        )
    return found
