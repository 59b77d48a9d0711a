"""The media port: attachments checked and cleaned on the way in, kept by their sha256."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from bridge.config import MediaConfig
from bridge.core.models import Attachment, Thumbnail
from bridge.media.blobs import MediaStore
from bridge.media.cleaning import CheckedImage, ImageLimits, check_image, keep_pillow_guard_above
from bridge.media.file_types import ALLOWED_TYPES, sniff_content_type
from bridge.media.uploads import prepare_upload

T = TypeVar("T")


class MediaLibrary:
    def __init__(self, media: MediaConfig) -> None:
        self._store = MediaStore(media.directory)
        self.max_bytes = media.max_upload_bytes
        self._limits = ImageLimits.of(media)
        keep_pillow_guard_above(self._limits)
        # A large image takes a few hundred MB while it is decoded: a few at a time.
        self._decoding = asyncio.Semaphore(media.decodes_at_once)

    async def _decode(self, work: Callable[[], T]) -> T:
        """`work` in a worker thread, at most `decodes_at_once` at a time. A caller that stops
        waiting doesn't free its place: the thread can't be stopped and holds its memory
        until it ends, so the place is given back only then."""
        await self._decoding.acquire()
        thread = asyncio.ensure_future(asyncio.to_thread(work))

        def done(finished: asyncio.Future[T]) -> None:
            self._decoding.release()
            if not finished.cancelled():
                finished.exception()  # seen here too, for a caller that stopped waiting

        thread.add_done_callback(done)
        return await asyncio.shield(thread)

    async def check_image(self, data: bytes) -> CheckedImage:
        """A product image's type and size, decoded like an upload (BadRequest if it isn't
        a whole image within the limits)."""
        return await self._decode(partial(check_image, data, self._limits))

    async def accept_upload(self, data: bytes, name: str | None) -> Attachment:
        # Decoding and re-encoding an image is CPU work: off the event loop.
        prepared = await self._decode(
            partial(prepare_upload, data, name, max_bytes=self.max_bytes, limits=self._limits)
        )
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

    async def forget(self, sha256: str) -> None:
        try:
            await self._store.forget(sha256)
        except ValueError:  # not a sha256 at all: nothing of ours
            return

    def content_type(self, data: bytes) -> str | None:
        found = sniff_content_type(data)
        return found if found in ALLOWED_TYPES else None

    async def checked_type(self, data: bytes) -> str | None:
        # A zip with many entries takes seconds to look through: off the event loop.
        return await asyncio.to_thread(self.content_type, data)
