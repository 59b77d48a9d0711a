"""Attachment names made safe to show and download, with an extension that matches the real type."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.media import file_types
from bridge.media.file_types import ALLOWED_TYPES
from bridge.media.filenames import safe_filename

# -- Names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("../../etc/passwd", "text/plain", "passwd.txt"),
        ("..\\..\\Windows\\win.ini", "text/plain", "win.txt"),
        ("C:\\Users\\jane\\Desktop\\invoice.png", "application/pdf", "invoice.pdf"),
        ("..", "application/pdf", "file.pdf"),
        (".htaccess", "text/plain", "file.txt"),
        # A right-to-left override would show "invoiceexe.pdf" as "invoicefdp.exe".
        ("invoice\u202efdp.exe", "application/pdf", "invoicefdp.pdf"),
        ("photo\u2067\u200b.jpg", "image/jpeg", "photo.jpg"),
        ('my "best"\r\nphoto;.JPG', "image/jpeg", "my _best_ photo_.jpg"),
        ("Report\t Q3 \u00a0 final.docx", "application/msword", "Report Q3 final.doc"),
        ("50% off: <today>?.pdf", "application/pdf", "50_ off_ _today__.pdf"),
        ("Mr. Smith", "application/pdf", "Mr. Smith.pdf"),
        ("Cafe\u0301.png", "image/png", "Café.png"),
        ("CON.txt", "text/plain", "CON_.txt"),
        ("notes.md", "text/plain", "notes.md"),
        ("photo.jpeg", "image/jpeg", "photo.jpeg"),
        ("trailing dots... ", "image/gif", "trailing dots.gif"),
        (None, "image/jpeg", "image.jpg"),
        (None, "application/pdf", "file.pdf"),
        ("", "image/png", "image.png"),
        ("\u202e\u0000", "image/webp", "image.webp"),
    ],
)
def test_safe_filename(name: str | None, content_type: str, expected: str) -> None:
    assert safe_filename(name, content_type) == expected


def test_a_long_name_is_cut_keeping_its_extension() -> None:
    name = safe_filename("quarterly report " * 20 + ".pdf", "application/pdf")

    assert len(name) == 120
    assert name == ("quarterly report " * 20)[:116] + ".pdf"


@given(st.text(max_size=300), st.sampled_from(sorted(ALLOWED_TYPES)))
def test_any_name_comes_out_safe(name: str, content_type: str) -> None:
    safe = safe_filename(name, content_type)

    assert 0 < len(safe) <= 120
    assert not set(safe) & set('/\\"*:<>?|;%')
    assert all(unicodedata.category(char)[0] != "C" for char in safe)
    assert safe == " ".join(safe.split())
    assert not safe.startswith(".")
    assert safe.rsplit(".", 1)[1] in file_types.EXTENSIONS[content_type]
