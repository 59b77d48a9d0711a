"""The media port: attachments checked and cleaned on the way in, kept by their sha256."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bridge.core.models import Attachment, Thumbnail
from bridge.media.attachments import ALLOWED_TYPES, prepare_upload, sniff_content_type
from bridge.media.store import MediaStore


class MediaLibrary:
    def __init__(self, directory: Path, max_bytes: int, at_once: int = 2) -> None:
        self._store = MediaStore(directory)
        self.max_bytes = max_bytes
        # A large image takes a few hundred MB while it is decoded: a few at a time.
        self._decoding = asyncio.Semaphore(at_once)

    async def accept_upload(self, data: bytes, name: str | None) -> Attachment:
        # Decoding and re-encoding an image is CPU work: off the event loop.
        async with self._decoding:
            prepared = await asyncio.to_thread(prepare_upload, data, name, max_bytes=self.max_bytes)
        thumbnail = None
        if prepared.thumbnail is not None:
            small = prepared.thumbnail
            thumbnail = Thumbnail(
                content_type=small.content_type,
                width=small.width,
                height=small.height,
                size=len(small.data),
                sha256=await self._store.put(small.data),
            )
        return Attachment(
            attachment_id="",
            kind=prepared.kind,
            name=prepared.name,
            content_type=prepared.content_type,
            size=prepared.size,
            sha256=await self._store.put(prepared.data),
            width=prepared.width,
            height=prepared.height,
            thumbnail=thumbnail,
        )

    async def keep(self, data: bytes) -> str:
        return await self._store.put(data)

    async def read(self, sha256: str) -> bytes | None:
        try:
            return await self._store.read(sha256)
        except ValueError:  # not a sha256 at all
            return None

    def content_type(self, data: bytes) -> str | None:
        found = sniff_content_type(data)
        return found if found in ALLOWED_TYPES else None
