"""Files a buyer attaches, checked before anyone else sees them: the real type read from the
bytes, images without their metadata (an upright JPEG as taken, minus its metadata
segments; anything else re-encoded from its pixels) and with a thumbnail, names made safe.

Pure and CPU-bound: the caller runs `prepare_upload` in a worker thread.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import math
import re
import struct
import unicodedata
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from PIL import ExifTags, Image, ImageFile, ImageSequence

from bridge.config import MediaConfig
from bridge.core.models import AttachmentKind
from bridge.errors import BadRequest, TooLarge

# A truncated image is refused, never padded with grey. This is Pillow's default, but it is a
# process-wide switch and the check below depends on it, so it is pinned here.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow's own guard against decompression bombs warns at one size and raises at twice it.
# Every image here is measured against the configured limits as soon as it is opened
# (`_opened`), and `keep_pillow_guard_above` keeps the guard at or above those limits, so
# its warning only ever comes for an image that is refused anyway: an error, then, rather
# than a line on stderr per attempt.
warnings.simplefilter("error", Image.DecompressionBombWarning)

PNG = "image/png"
JPEG = "image/jpeg"
GIF = "image/gif"
WEBP = "image/webp"
PDF = "application/pdf"
TEXT = "text/plain"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODP = "application/vnd.oasis.opendocument.presentation"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PPT = "application/vnd.ms-powerpoint"

# The extensions a file of each type may keep; the first is the one it gets otherwise.
_EXTENSIONS: dict[str, tuple[str, ...]] = {
    PNG: ("png",),
    JPEG: ("jpg", "jpeg"),
    GIF: ("gif",),
    WEBP: ("webp",),
    PDF: ("pdf",),
    TEXT: ("txt", "text", "log", "md"),
    DOCX: ("docx",),
    XLSX: ("xlsx",),
    PPTX: ("pptx",),
    ODT: ("odt",),
    ODS: ("ods",),
    ODP: ("odp",),
    DOC: ("doc",),
    XLS: ("xls",),
    PPT: ("ppt",),
}
IMAGE_TYPES = frozenset({PNG, JPEG, GIF, WEBP})
ALLOWED_TYPES = frozenset(_EXTENSIONS)

# An animation is bounded as a whole too: its frames are held at once, four bytes a pixel.
MAX_ANIMATION_PIXELS = 50_000_000
MAX_FRAMES = 1000
THUMBNAIL_SIZE = (320, 320)
# A big image is thumbnailed in steps: first shrunk by a whole factor (the JPEG decoder's
# draft, or reduce()) to no less than this many times the thumbnail, then resampled.
THUMBNAIL_REDUCING_GAP = 2
LOSSY_QUALITY = 92
THUMBNAIL_QUALITY = 85
# How much of a text file is searched for markup; browsers sniff less than this.
MARKUP_WINDOW = 4096
MAX_NAME_LENGTH = 120


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
class _Bytes:
    data: bytes = field(repr=False)  # a repr never dumps megabytes into a log

    @property
    def size(self) -> int:
        return len(self.data)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class PreparedThumbnail(_Bytes):
    content_type: str
    width: int
    height: int


@dataclass(frozen=True)
class PreparedFile(_Bytes):
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
    image = _clean_image(data, content_type, limits)
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


# ---------------------------------------------------------------------------------------------
# What a file really is


_IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"GIF87a", GIF),
    (b"GIF89a", GIF),
)


def sniff_image_type(data: bytes) -> str | None:
    """PNG, JPEG, GIF or WebP, read from the first bytes; None for anything else."""
    for signature, content_type in _IMAGE_SIGNATURES:
        if data.startswith(signature):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


def sniff_content_type(data: bytes, name: str | None = None) -> str | None:
    """The type of `data` if it is one the bridge carries (ALLOWED_TYPES), else None.

    The type comes from the bytes alone; `name` only settles a legacy office file whose
    top level holds the streams of more than one application."""
    if image := sniff_image_type(data):
        return image
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"PK\x03\x04"):
        return _zip_office_type(data)
    if data.startswith(_OLE_SIGNATURE):
        return _ole_office_type(data, name)
    if _is_plain_text(data):
        return TEXT
    return None


_OOXML_FOLDERS = {"word/": DOCX, "xl/": XLSX, "ppt/": PPTX}
_ODF_TYPES = frozenset({ODT, ODS, ODP})
# Office documents that carry macros are refused: they run code on the reader's machine.
_MACRO_PART = re.compile(r"(^|/)vbaProject\.bin$|^(Basic|Scripts)/", re.IGNORECASE)
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError)


def _zip_office_type(data: bytes) -> str | None:
    """OOXML (a `[Content_Types].xml` and its application's folder) or ODF (a `mimetype`
    entry naming it); any other zip is None."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if any(_MACRO_PART.search(name) for name in names):
                return None
            if "[Content_Types].xml" in names:
                found = {
                    content_type
                    for folder, content_type in _OOXML_FOLDERS.items()
                    if any(name.startswith(folder) for name in names)
                }
                return found.pop() if len(found) == 1 else None
            if "mimetype" in names and archive.getinfo("mimetype").file_size <= 100:
                declared = archive.read("mimetype").decode("ascii", "replace").strip()
                return declared if declared in _ODF_TYPES else None
    except _ZIP_ERRORS:
        return None
    return None


_OLE_SIGNATURE = bytes.fromhex("d0cf11e0a1b11ae1")
_OLE_STREAMS = {"WordDocument": DOC, "Workbook": XLS, "Book": XLS, "PowerPoint Document": PPT}
_OLE_LAST_SECTOR = 0xFFFFFFF9  # higher numbers mark free sectors and the ends of chains
_OLE_NO_ENTRY = 0xFFFFFFFF


def _ole_office_type(data: bytes, name: str | None) -> str | None:
    """Word, Excel or PowerPoint 97–2003, told by the streams at the top of the compound
    file. Anything else in that container (installers, Outlook items, encrypted OOXML) is None."""
    found = {
        _OLE_STREAMS[stream] for stream in _ole_top_level_streams(data) if stream in _OLE_STREAMS
    }
    if len(found) == 1:
        return found.pop()
    declared = _extension(name or "")
    for content_type in found:
        if declared in _EXTENSIONS[content_type]:
            return content_type
    return None


def _ole_top_level_streams(data: bytes) -> set[str]:
    """The names of the streams directly under the root of an OLE2 compound file ([MS-CFB]),
    or an empty set when it doesn't parse."""
    try:
        entries = _ole_directory(data)
        names: set[str] = set()
        # The root's children form a binary tree through their left and right siblings.
        pending: list[int] = [struct.unpack_from("<I", entries[0], 76)[0]]
        visited: set[int] = set()
        while pending:
            index = pending.pop()
            if index == _OLE_NO_ENTRY or index >= len(entries) or index in visited:
                continue
            visited.add(index)
            entry = entries[index]
            length = struct.unpack_from("<H", entry, 64)[0]
            if entry[66] == 2 and 2 <= length <= 64:  # a stream, with a name that fits
                names.add(entry[: length - 2].decode("utf-16-le"))
            pending += struct.unpack_from("<II", entry, 68)
    except (struct.error, ValueError, IndexError):
        return set()
    return names


def _ole_directory(data: bytes) -> list[bytes]:
    """The 128-byte directory entries, found through the sector allocation table."""
    shift = struct.unpack_from("<H", data, 0x1E)[0]
    if shift not in (9, 12):
        raise ValueError("not a compound file sector size")
    size = 1 << shift
    per_sector = f"<{size // 4}I"

    def sector(number: int) -> bytes:
        start = (number + 1) * size
        if number > _OLE_LAST_SECTOR or start + size > len(data):
            raise ValueError("a sector outside the file")
        return data[start : start + size]

    fat_sectors = list(struct.unpack_from("<109I", data, 0x4C))
    next_difat, difat_count = struct.unpack_from("<II", data, 0x44)
    for _ in range(min(difat_count, len(data) // size)):
        if next_difat > _OLE_LAST_SECTOR:
            break
        *listed, next_difat = struct.unpack(per_sector, sector(next_difat))
        fat_sectors += listed
    fat: list[int] = []
    for number in fat_sectors:
        if number <= _OLE_LAST_SECTOR:
            fat += struct.unpack(per_sector, sector(number))

    directory = bytearray()
    current: int = struct.unpack_from("<I", data, 0x30)[0]
    seen: set[int] = set()
    while current <= _OLE_LAST_SECTOR and current not in seen:
        seen.add(current)
        directory += sector(current)
        current = fat[current]
    return [bytes(directory[at : at + 128]) for at in range(0, len(directory), 128)]


# C0 controls other than tab, line feed, vertical tab, form feed and carriage return.
_BINARY_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_MARKUP_START = re.compile(r"<[a-z!?/]", re.IGNORECASE)
_MARKUP_TAG = re.compile(
    r"<\s*(?:script|html|svg|iframe|frame|object|embed|body|head|meta|link|style|img|math"
    r"|xml|\?xml|!doctype|!\[cdata\[)(?![a-z0-9-])",
    re.IGNORECASE,
)
_FIRST_VISIBLE = re.compile(r"\S")


def _is_plain_text(data: bytes) -> bool:
    """UTF-8 (or UTF-16 with its byte-order mark) without binary control characters, and not
    markup: HTML, SVG or XML would be rendered, and run, by a browser that second-guesses
    the type."""
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = data.decode("utf-16")
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    if _BINARY_CONTROLS.search(text):
        return False
    first = _FIRST_VISIBLE.search(text)
    head = text[first.start() : first.start() + MARKUP_WINDOW] if first else ""
    return not (_MARKUP_START.match(head) or _MARKUP_TAG.search(head))


# ---------------------------------------------------------------------------------------------
# Images: upright, without metadata, with a thumbnail


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
class _CleanImage:
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


def _clean_image(data: bytes, content_type: str, limits: ImageLimits) -> _CleanImage:
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


def _upright_jpeg_without_metadata(data: bytes, limits: ImageLimits) -> _CleanImage | None:
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
    return _CleanImage(stripped, width, height, thumbnail)


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


def _rebuilt_image(data: bytes, content_type: str, limits: ImageLimits) -> _CleanImage:
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
    return _CleanImage(output.getvalue(), first.width, first.height, _thumbnail(first, icc_profile))


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


# ---------------------------------------------------------------------------------------------
# Names


# Unsafe in a path, a Content-Disposition header or a Windows file name.
_UNSAFE_IN_NAME = re.compile(r'[\\/"*:<>?|;%]')
_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,8})$")
_WINDOWS_DEVICE = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])$", re.IGNORECASE)


def _extension(name: str) -> str:
    match = _EXTENSION.search(name)
    return match.group(1).lower() if match else ""


def safe_filename(name: str | None, content_type: str) -> str:
    """The name to show and offer for download: no path, no control or bidi characters,
    nothing that breaks a header, at most MAX_NAME_LENGTH characters, and an extension
    that matches the real type ("invoice.png" holding a PDF becomes "invoice.pdf")."""
    extensions = _EXTENSIONS.get(content_type, ("bin",))
    text = unicodedata.normalize("NFC", name or "")
    text = re.split(r"[\\/]", text)[-1]
    # Category C is controls, format characters (bidi overrides, zero-width), surrogates,
    # private use and unassigned code points.
    text = "".join(
        (" " if char.isspace() else "") if unicodedata.category(char)[0] == "C" else char
        for char in text
    )
    text = " ".join(_UNSAFE_IN_NAME.sub("_", text).split())
    declared = _extension(text)
    if declared:
        text = text[: -len(declared) - 1]
    extension = declared if declared in extensions else extensions[0]
    stem = text.strip(" .")[: MAX_NAME_LENGTH - len(extension) - 1].rstrip(" .")
    if not stem:
        stem = "image" if content_type in IMAGE_TYPES else "file"
    if _WINDOWS_DEVICE.match(stem):
        stem += "_"
    return f"{stem}.{extension}"
