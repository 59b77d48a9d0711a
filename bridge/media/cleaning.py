"""Images made safe to pass on: measured against the shape limits before a pixel is decoded,
stripped of their metadata (or re-encoded from their pixels), turned upright, thumbnailed."""

from __future__ import annotations

import hashlib
import io
import math
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from PIL import ExifTags, Image, ImageFile, ImageSequence

from bridge.config import MediaConfig
from bridge.errors import BadRequest
from bridge.media.file_types import GIF, JPEG, PNG, WEBP, sniff_image_type

# A truncated image is refused, never padded with grey. This is Pillow's default, but it is a
# process-wide switch that any library may flip on import (Synapse's does), and the checks
# below depend on it: it is pinned here and again before each image is opened.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow's own guard against decompression bombs warns at one size and raises at twice it.
# Every image here is measured against the configured limits as soon as it is opened
# (`_opened`), and `keep_pillow_guard_above` keeps the guard at or above those limits, so
# its warning only ever comes for an image that is refused anyway: an error, then, rather
# than a line on stderr per attempt.
warnings.simplefilter("error", Image.DecompressionBombWarning)

# An animation is bounded as a whole too: its frames are held at once, four bytes a pixel.
MAX_ANIMATION_PIXELS = 50_000_000
MAX_FRAMES = 1000
THUMBNAIL_SIZE = (320, 320)
# A big image is thumbnailed in steps: first shrunk by a whole factor (the JPEG decoder's
# draft, or reduce()) to no less than this many times the thumbnail, then resampled.
THUMBNAIL_REDUCING_GAP = 2
LOSSY_QUALITY = 92
THUMBNAIL_QUALITY = 85


@dataclass(frozen=True)
class ImageLimits:
    """The shapes of image the bridge decodes (`media.max_image_*`); anything else is refused
    from its header, before a pixel is decoded."""

    max_side: int
    max_pixels: int
    max_aspect_ratio: float

    @classmethod
    def of(cls, media: MediaConfig) -> ImageLimits:
        return cls(media.max_image_side, media.max_image_pixels, media.max_aspect_ratio)

    def check(self, width: int, height: int) -> None:
        """BadRequest unless an image of `width` × `height` pixels is within the limits."""
        if width < 1 or height < 1:
            raise _broken_image()
        longer, shorter = max(width, height), min(width, height)
        if longer > self.max_side:
            raise BadRequest(
                f"The picture is {width} × {height} pixels; each side may be at most"
                f" {self.max_side} pixels. Send a smaller one.",
                "BAZAAR_BROKEN_IMAGE",
            )
        if width * height > self.max_pixels:
            raise _too_many_pixels(self.max_pixels)
        if longer > self.max_aspect_ratio * shorter:
            raise BadRequest(
                f"The picture is too long and narrow to be shown ({width} × {height} pixels:"
                f" the longer side may be at most {self.max_aspect_ratio:g} times the"
                " shorter). Send another.",
                "BAZAAR_BROKEN_IMAGE",
            )


DEFAULT_IMAGE_LIMITS = ImageLimits.of(MediaConfig())


def keep_pillow_guard_above(limits: ImageLimits) -> None:
    """Raise Pillow's process-wide guard to `limits` where it is lower, so that it never
    refuses an image these limits allow; it stays in place above them."""
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and current < limits.max_pixels:
        Image.MAX_IMAGE_PIXELS = limits.max_pixels


@dataclass(frozen=True)
class PreparedBytes:
    """Bytes fit to be passed on, with their size and SHA-256."""

    data: bytes = field(repr=False)  # a repr never dumps megabytes into a log

    @property
    def size(self) -> int:
        return len(self.data)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class PreparedThumbnail(PreparedBytes):
    content_type: str
    width: int
    height: int


_PILLOW_FORMATS = {PNG: "PNG", JPEG: "JPEG", GIF: "GIF", WEBP: "WEBP"}
# What Pillow raises on bytes it can't decode.
_UNDECODABLE = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error)
# The transposition that puts each EXIF orientation upright, as ImageOps.exif_transpose
# does; applied here to every frame of an animation alike.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# An ICC profile describes one colour space; it is kept only while the pixels stay in it.
_COLOUR_SPACE = {"L": "grey", "LA": "grey", "RGB": "rgb", "RGBA": "rgb", "P": "rgb", "PA": "rgb"}


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    width: int
    height: int
    thumbnail: PreparedThumbnail


def _broken_image() -> BadRequest:
    return BadRequest(
        "The picture is damaged or incomplete, so it can't be shown. Try saving it again.",
        "BAZAAR_BROKEN_IMAGE",
    )


def _too_many_pixels(most: int | None = None) -> BadRequest:
    limit = f" (at most {most / 1_000_000:g} million)" if most is not None else ""
    return BadRequest(
        f"The picture has too many pixels to be shown{limit}; send a smaller one.",
        "BAZAAR_BROKEN_IMAGE",
    )


@contextmanager
def _opened(data: bytes, formats: list[str], limits: ImageLimits) -> Iterator[Image.Image]:
    """The image, opened lazily (Pillow reads only its header) and refused unless its shape
    is within `limits`: nothing is decoded before that."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    with Image.open(io.BytesIO(data), formats=formats) as image:
        limits.check(image.width, image.height)
        yield image


@dataclass(frozen=True)
class CheckedImage:
    content_type: str
    width: int
    height: int


def check_image(data: bytes, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> CheckedImage:
    """What a PNG, JPEG, GIF or WebP (a product image) is, once its shape is within `limits`
    and it decodes whole; BadRequest otherwise. A JPEG is decoded at the smallest scale its
    decoder offers: that still reads all of its data, so a cut file fails."""
    content_type = sniff_image_type(data)
    if content_type is None:
        raise BadRequest("This is not a PNG, JPEG, GIF or WebP picture.", "BAZAAR_FILE_TYPE")
    try:
        with _opened(data, [_PILLOW_FORMATS[content_type]], limits) as image:
            width, height = image.size
            if content_type == JPEG:
                image.draft(image.mode, (THUMBNAIL_SIZE[0], THUMBNAIL_SIZE[1]))
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(limits.max_pixels) from None
    except _UNDECODABLE:
        raise _broken_image() from None
    return CheckedImage(content_type, width, height)


def clean_image(data: bytes, content_type: str, limits: ImageLimits) -> CleanImage:
    if content_type == JPEG:
        as_taken = _upright_jpeg_without_metadata(data, limits)
        if as_taken is not None:
            return as_taken
    return _rebuilt_image(data, content_type, limits)


# What a decoder needs of a JPEG beside the picture: its colour profile (APP2) and Adobe's
# colour transform (APP14). Every other application segment (APP1 EXIF and XMP, APP13 IPTC,
# makers' own) and every comment is metadata, and is left out.
_JPEG_KEPT_APPS = {0xE2: b"ICC_PROFILE\x00", 0xEE: b"Adobe"}
_JPEG_JFIF = 0xE0
_JPEG_SCAN = 0xDA
_JPEG_END = 0xD9


def _upright_jpeg_without_metadata(data: bytes, limits: ImageLimits) -> CleanImage | None:
    """An upright photo as it came, minus its metadata: no pixel is decoded and encoded
    again, so nothing is lost and it is fast. None when it must be rebuilt instead (turned
    by its EXIF orientation, not grey or RGB, or a stream this doesn't follow)."""
    stripped = _jpeg_segments_without_metadata(data)
    if stripped is None:
        return None
    try:
        with _opened(data, ["JPEG"], limits) as image:
            if image.getexif().get(ExifTags.Base.Orientation, 1) != 1:
                return None
            if image.mode not in ("L", "RGB"):
                return None
            icc_profile = image.info.get("icc_profile")
        with _opened(stripped, ["JPEG"], limits) as image:
            width, height = image.size
            # Decoded only as large as the thumbnail needs (JPEG decodes at 1/2 to 1/8 of
            # its size cheaply); all of the data is still read, so a cut file fails here.
            scale = min(THUMBNAIL_SIZE[0] / width, THUMBNAIL_SIZE[1] / height, 1.0)
            image.draft(image.mode, (math.ceil(width * scale), math.ceil(height * scale)))
            image.load()
            thumbnail = _thumbnail(image, icc_profile)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(limits.max_pixels) from None
    except _UNDECODABLE:
        return None  # the full path decodes it again and says what is wrong
    return CleanImage(stripped, width, height, thumbnail)


def _jpeg_segments_without_metadata(data: bytes) -> bytes | None:
    """The JPEG's segments a decoder needs, up to the end of its first image (what follows
    it, the previews and depth maps of MPF files, is left out); None for anything this
    doesn't follow."""
    if not data.startswith(b"\xff\xd8"):
        return None
    kept = bytearray(b"\xff\xd8")
    at, size = 2, len(data)
    while at + 1 < size:
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # a fill byte
            at += 1
            continue
        if marker == _JPEG_END:
            return bytes(kept + b"\xff\xd9")
        if at + 4 > size:
            return None
        end = at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        if end > size or end < at + 4:
            return None
        segment = data[at:end]
        if marker == _JPEG_SCAN:
            entropy_end = _end_of_entropy_data(data, end)
            if entropy_end is None:
                return None
            kept += segment + data[end:entropy_end]
            at = entropy_end
            continue
        if marker == _JPEG_JFIF:
            if segment[4:9] == b"JFIF\x00" and len(segment) >= 18:
                # Version, units and density, without the thumbnail JFIF may carry.
                kept += b"\xff\xe0\x00\x10" + segment[4:16] + b"\x00\x00"
        elif 0xE0 <= marker <= 0xEF or marker == 0xFE:
            prefix = _JPEG_KEPT_APPS.get(marker)
            if prefix is not None and segment[4:].startswith(prefix):
                kept += segment
        else:
            kept += segment
        at = end
    return None


def _end_of_entropy_data(data: bytes, start: int) -> int | None:
    """Where a scan's coded data ends: at the first marker that is not a stuffed 0xFF00 or
    a restart marker."""
    at = start
    while True:
        at = data.find(b"\xff", at)
        if at < 0 or at + 1 >= len(data):
            return None
        following = data[at + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            at += 1 if following == 0xFF else 2
            continue
        return at


def _rebuilt_image(data: bytes, content_type: str, limits: ImageLimits) -> CleanImage:
    """Decode every pixel (refusing truncated and oversized images), turn the picture upright
    and encode it again in its own format from the pixels alone, so that no EXIF (GPS, camera),
    XMP, IPTC, text chunk or comment survives. Animations keep their frames and timing."""
    formats = [_PILLOW_FORMATS[content_type]]
    try:
        with _opened(data, formats, limits) as image:
            image.verify()  # checksums, where the format has them (PNG)
        with _opened(data, formats, limits) as image:
            source_mode = image.mode
            orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
            icc_profile = image.info.get("icc_profile")
            loop = image.info.get("loop")
            # The further frames of a JPEG (MPO) are depth maps and previews: dropped.
            animated = content_type != JPEG and getattr(image, "n_frames", 1) > 1
            frames: list[Image.Image] = []
            durations: list[int] = []
            budget = MAX_ANIMATION_PIXELS
            for frame in ImageSequence.Iterator(image) if animated else [image]:
                # A GIF's canvas grows when a later frame reaches past it: measured again.
                limits.check(frame.width, frame.height)
                budget -= frame.width * frame.height
                if budget < 0 or len(frames) == MAX_FRAMES:
                    raise _too_many_pixels()
                mode = "RGBA" if animated else _clean_mode(frame, content_type)
                pixels = _pixels_only(frame, mode)
                if transpose := _UPRIGHT.get(orientation):
                    pixels = pixels.transpose(transpose)
                frames.append(pixels)
                durations.append(int(frame.info.get("duration", 0)))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard, for what it measures before the limits above are looked at.
        raise _too_many_pixels(limits.max_pixels) from None
    except _UNDECODABLE:
        raise _broken_image() from None

    first = frames[0]
    if _COLOUR_SPACE.get(source_mode) != _COLOUR_SPACE.get(first.mode):
        icc_profile = None
    options: dict[str, Any] = {"icc_profile": icc_profile} if icc_profile else {}
    if content_type == JPEG:
        options |= {"quality": LOSSY_QUALITY, "optimize": True}
    elif content_type == WEBP:
        # A lossless original (a VP8L bitstream) stays lossless.
        options |= {"lossless": True} if data[12:16] == b"VP8L" else {"quality": LOSSY_QUALITY}
    if len(frames) > 1:
        options |= {"save_all": True, "append_images": frames[1:], "duration": durations}
        if loop is not None:
            options["loop"] = loop
    output = io.BytesIO()
    first.save(output, _PILLOW_FORMATS[content_type], **options)
    return CleanImage(output.getvalue(), first.width, first.height, _thumbnail(first, icc_profile))


def _clean_mode(frame: Image.Image, content_type: str) -> str:
    """The mode a still image is re-encoded in: its own where the format takes it."""
    kept = {JPEG: ("L", "RGB"), PNG: ("L", "LA", "RGB", "RGBA")}.get(content_type, ())
    if frame.mode in kept:
        return frame.mode
    if frame.mode.startswith("I"):  # 16-bit grey, scaled to 8 bits by _pixels_only
        return "L"
    if content_type == JPEG:
        return "RGB"
    translucent = frame.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in frame.info
    return "RGBA" if translucent else "RGB"


def _pixels_only(frame: Image.Image, mode: str) -> Image.Image:
    """A new image holding only the frame's pixels: no `info`, EXIF or text comes along."""
    if frame.mode.startswith("I;16") or frame.mode == "I":
        # 16-bit grey: scale to 8 bits rather than let the conversion clip it to white.
        frame = frame.convert("I").point(lambda value: value / 256).convert("L")
    converted = frame if frame.mode == mode else frame.convert(mode)
    clean = Image.new(mode, converted.size)
    clean.paste(converted)
    return clean


def _thumbnail(image: Image.Image, icc_profile: bytes | None) -> PreparedThumbnail:
    """A still that fits THUMBNAIL_SIZE: JPEG when opaque, PNG when any pixel lets the
    background through. A smaller image is not enlarged, only re-encoded, so every image
    has a thumbnail of the same kinds and a client need not special-case it."""
    small = _reduced(image)
    small.thumbnail(THUMBNAIL_SIZE, Image.Resampling.LANCZOS)
    options: dict[str, Any] = {"icc_profile": icc_profile} if icc_profile else {}
    if _is_translucent(small):
        content_type, format_name = PNG, "PNG"
    else:
        content_type, format_name = JPEG, "JPEG"
        options["quality"] = THUMBNAIL_QUALITY
        small = small.convert("L" if small.mode in ("L", "LA") else "RGB")
    output = io.BytesIO()
    small.save(output, format_name, **options)
    return PreparedThumbnail(output.getvalue(), content_type, small.width, small.height)


def _reduced(image: Image.Image) -> Image.Image:
    """A copy shrunk by the largest whole factor that keeps it THUMBNAIL_REDUCING_GAP times
    the thumbnail: a box average, cheap and small, so the full-size picture is neither copied
    nor resampled in one go."""
    overshoot = max(image.width / THUMBNAIL_SIZE[0], image.height / THUMBNAIL_SIZE[1])
    factor = int(overshoot // THUMBNAIL_REDUCING_GAP)
    if factor < 2 or image.mode in ("1", "P"):  # reduce() takes neither bilevel nor palette
        return image.copy()
    return image.reduce(factor)


def _is_translucent(image: Image.Image) -> bool:
    if "A" not in image.getbands():
        return False
    alpha = image.getchannel("A")
    return alpha.histogram()[255] < alpha.width * alpha.height
