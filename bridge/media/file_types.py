"""The types of file the bridge carries (the allow-list, with the extensions each may keep)
and how a file's real type is read from its bytes, whatever its name claims."""

from __future__ import annotations

import codecs
import io
import re
import struct
import zipfile

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
EXTENSIONS: dict[str, tuple[str, ...]] = {
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
ALLOWED_TYPES = frozenset(EXTENSIONS)

# How much of a text file is searched for markup; browsers sniff less than this.
MARKUP_WINDOW = 4096

_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,8})$")


def declared_extension(name: str) -> str:
    """The extension `name` ends with, lower-case; "" for none."""
    match = _EXTENSION.search(name)
    return match.group(1).lower() if match else ""


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
    declared = declared_extension(name or "")
    for content_type in found:
        if declared in EXTENSIONS[content_type]:
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
