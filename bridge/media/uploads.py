"""A buyer's upload checked by its bytes and made safe to pass on: the real type, a cleaned
image with its thumbnail, a safe name; or refused with a reason the buyer can read.

Pure and CPU-bound: the caller runs `prepare_upload` in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.core.models import AttachmentKind
from bridge.errors import BadRequest, TooLarge
from bridge.media.cleaning import (
    DEFAULT_IMAGE_LIMITS,
    ImageLimits,
    PreparedBytes,
    PreparedThumbnail,
    clean_image,
)
from bridge.media.file_types import IMAGE_TYPES, sniff_content_type
from bridge.media.filenames import safe_filename


@dataclass(frozen=True)
class PreparedFile(PreparedBytes):
    """An attachment fit to be shown: its bytes are what everyone else will receive."""

    name: str
    content_type: str
    kind: AttachmentKind
    width: int | None
    height: int | None
    thumbnail: PreparedThumbnail | None


def prepare_upload(
    data: bytes,
    name: str | None,
    *,
    max_bytes: int,
    limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
) -> PreparedFile:
    """Check a buyer's file by its bytes and make it safe to pass on; BadRequest otherwise."""
    if not data:
        raise BadRequest("The file is empty.", "BAZAAR_EMPTY_FILE")
    if len(data) > max_bytes:
        raise TooLarge(f"The file is larger than {_amount(max_bytes)}.", "M_TOO_LARGE")
    content_type = sniff_content_type(data, name)
    if content_type is None:
        raise BadRequest(
            "This kind of file can't be sent. Send a picture (JPEG, PNG, GIF or WebP), a PDF,"
            " a plain text file or an office document.",
            "BAZAAR_FILE_TYPE",
        )
    filename = safe_filename(name, content_type)
    if content_type not in IMAGE_TYPES:
        return PreparedFile(data, filename, content_type, AttachmentKind.FILE, None, None, None)
    image = clean_image(data, content_type, limits)
    return PreparedFile(
        image.data,
        filename,
        content_type,
        AttachmentKind.IMAGE,
        image.width,
        image.height,
        image.thumbnail,
    )


def _amount(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.3g} MB"
    if size >= 1024:
        return f"{size / 1024:.3g} KB"
    return f"{size} bytes"
