"""Attachments' bytes for the readers of a conversation: the buyer in the widget, the
marketplace through its API. A seller's file is fetched from the homeserver the first time
someone asks for it, checked by its bytes, and kept with the type found; every later
download is served with that type, without looking through the bytes again."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Protocol

from bridge.core.ids import MessageID, message_of_attachment
from bridge.core.models import Attachment, AttachmentKind, Conversation, Thumbnail
from bridge.core.ports import (
    HomeserverUnavailable,
    MatrixPort,
    MatrixRejected,
    MediaPort,
)
from bridge.core.storage import MessageDelivery, MessageRecords
from bridge.errors import NotFound, TooLarge, Unavailable

logger = logging.getLogger(__name__)

# Anything the bridge can't vouch for is handed out as opaque bytes to download.
OPAQUE = "application/octet-stream"


class AttachmentStore(MessageRecords, MessageDelivery, Protocol):
    """The store as attachments' readers use it."""


@dataclass(frozen=True)
class Download:
    data: bytes
    content_type: str
    name: str
    # Images are shown in the page; everything else is offered as a file to save.
    inline: bool


@dataclass(frozen=True)
class _Fetched:
    data: bytes
    # Set when the bytes came from the homeserver just now and their local copy is new.
    new_sha256: str | None


class AttachmentFiles:
    def __init__(self, store: AttachmentStore, matrix: MatrixPort, media: MediaPort) -> None:
        self._store = store
        self._matrix = matrix
        self._media = media

    async def accept_upload(self, data: bytes, name: str | None) -> Attachment:
        return await self._media.accept_upload(data, name)

    async def download(
        self, conversation: Conversation, attachment_id: str, *, thumbnail: bool = False
    ) -> Download:
        unknown = NotFound(f"Unknown attachment '{attachment_id}'", "BAZAAR_UNKNOWN_ATTACHMENT")
        message_id = message_of_attachment(attachment_id)
        message = await self._store.get_message(message_id) if message_id else None
        if message is None or message.conversation_id != conversation.conversation_id:
            raise unknown
        attachment = next(
            (a for a in message.attachments if a.attachment_id == attachment_id), None
        )
        if attachment is None or message.deleted:
            raise unknown
        small = attachment.thumbnail if thumbnail else None
        part: Attachment | Thumbnail = small or attachment
        fetched = await self._bytes(part)
        if fetched is None:
            raise unknown
        # A kept file's type was checked when it was kept: a buyer's on upload, a seller's
        # on its first download.
        content_type = part.content_type
        if fetched.new_sha256 is not None:
            content_type = await self._media.checked_type(fetched.data) or OPAQUE
            await self._remember(
                message.message_id,
                message.attachments,
                attachment,
                small,
                fetched.new_sha256,
                content_type,
            )
        inline = attachment.kind == AttachmentKind.IMAGE and content_type.startswith("image/")
        return Download(fetched.data, content_type, attachment.name, inline)

    async def _bytes(self, part: Attachment | Thumbnail) -> _Fetched | None:
        if part.sha256 is not None:
            kept = await self._media.read(part.sha256)
            if kept is not None:
                return _Fetched(kept, None)
        if part.mxc is None:
            return None
        try:
            data = await self._matrix.download(part.mxc, self._media.max_bytes)
        except HomeserverUnavailable as error:
            raise Unavailable("The file can't be fetched right now; try again soon") from error
        except MatrixRejected as error:
            if error.errcode == "M_TOO_LARGE":
                raise TooLarge("The file is larger than the bridge passes on") from error
            logger.info("Homeserver refused %s: %s", part.mxc, error)
            return None
        return _Fetched(data, await self._media.keep(data))

    async def _remember(
        self,
        message_id: MessageID,
        attachments: tuple[Attachment, ...],
        attachment: Attachment,
        small: Thumbnail | None,
        sha256: str,
        content_type: str,
    ) -> None:
        """Keep the local copy's address and its checked type, so the homeserver is asked
        and the bytes are looked through only once."""
        if small is not None:
            checked = replace(small, sha256=sha256, content_type=content_type)
            changed = replace(attachment, thumbnail=checked)
        else:
            changed = replace(attachment, sha256=sha256, content_type=content_type)
        await self._store.set_attachments(
            message_id,
            [changed if a.attachment_id == attachment.attachment_id else a for a in attachments],
        )
