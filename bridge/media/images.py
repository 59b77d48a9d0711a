"""Product images for room avatars: fetched from the marketplace, checked by their bytes."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp

logger = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 5 * 1024 * 1024
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)

# The type is read from the first bytes, never from the name or the server's header.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass(frozen=True)
class Image:
    data: bytes
    content_type: str
    filename: str


def sniff_image_type(data: bytes) -> str | None:
    for signature, content_type in _SIGNATURES:
        if data.startswith(signature):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


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
