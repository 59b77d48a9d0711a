"""The names attachments are shown and downloaded under: no path, nothing that breaks a header
or fools a reader, and an extension that matches the file's real type."""

from __future__ import annotations

import re
import unicodedata

from bridge.media.file_types import EXTENSIONS, IMAGE_TYPES, declared_extension

MAX_NAME_LENGTH = 120

# Unsafe in a path, a Content-Disposition header or a Windows file name.
_UNSAFE_IN_NAME = re.compile(r'[\\/"*:<>?|;%]')
_WINDOWS_DEVICE = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])$", re.IGNORECASE)


def safe_filename(name: str | None, content_type: str) -> str:
    """The name to show and offer for download: no path, no control or bidi characters,
    nothing that breaks a header, at most MAX_NAME_LENGTH characters, and an extension
    that matches the real type ("invoice.png" holding a PDF becomes "invoice.pdf")."""
    extensions = EXTENSIONS.get(content_type, ("bin",))
    text = unicodedata.normalize("NFC", name or "")
    text = re.split(r"[\\/]", text)[-1]
    # Category C is controls, format characters (bidi overrides, zero-width), surrogates,
    # private use and unassigned code points.
    text = "".join(
        (" " if char.isspace() else "") if unicodedata.category(char)[0] == "C" else char
        for char in text
    )
    text = " ".join(_UNSAFE_IN_NAME.sub("_", text).split())
    declared = declared_extension(text)
    if declared:
        text = text[: -len(declared) - 1]
    extension = declared if declared in extensions else extensions[0]
    stem = text.strip(" .")[: MAX_NAME_LENGTH - len(extension) - 1].rstrip(" .")
    if not stem:
        stem = "image" if content_type in IMAGE_TYPES else "file"
    if _WINDOWS_DEVICE.match(stem):
        stem += "_"
    return f"{stem}.{extension}"
