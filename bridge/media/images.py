"""Product images for room avatars: fetched from the marketplace, checked by their bytes."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp

# The type is read from the first bytes, never from the name or the server's header.
from bridge.media.attachments import sniff_image_type

__all__ = ["FETCH_TIMEOUT", "MAX_IMAGE_BYTES", "Image", "ProductImages", "sniff_image_type"]

logger = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 5 * 1024 * 1024
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)


@dataclass(frozen=True)
class Image:
    data: bytes
    content_type: str
    filename: str


class ProductImages:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def fetch(self, url: str) -> Image | None:
        """The image at `url`, or None (logged) when it is missing, too big or not an image."""
        try:
            async with self._session.get(url, timeout=FETCH_TIMEOUT) as response:
                if response.status != 200:
                    logger.info("Product image %s: HTTP %d", url, response.status)
                    return None
                data = await response.content.read(MAX_IMAGE_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.info("Product image %s not fetched: %r", url, error)
            return None
        if len(data) > MAX_IMAGE_BYTES:
            logger.info("Product image %s is larger than %d bytes", url, MAX_IMAGE_BYTES)
            return None
        content_type = sniff_image_type(data)
        if content_type is None:
            logger.info("Product image %s is not a PNG, JPEG, GIF or WebP image", url)
            return None
        filename = url.rsplit("/", 1)[-1].split("?", 1)[0][:100] or "product"
        return Image(data, content_type, filename)
