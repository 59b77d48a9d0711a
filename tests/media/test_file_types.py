"""A file's type comes from its bytes: documents and plain text pass on unchanged under their real
type, markup and anything binary off the allow-list is refused."""

from __future__ import annotations

import hashlib

import pytest

from bridge.core.models import AttachmentKind
from bridge.errors import BadRequest
from bridge.media.file_types import ALLOWED_TYPES, sniff_content_type
from bridge.media.uploads import PreparedFile, prepare_upload
from tests.support import files

LIMIT = 5 * 1024 * 1024

# -- Documents and text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "content_type", "expected_name"),
    [
        (files.pdf(), "Invoice 42.PDF", "application/pdf", "Invoice 42.pdf"),
        (files.pdf(), "invoice.png", "application/pdf", "invoice.pdf"),
        (
            files.docx(),
            "offer",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "offer.docx",
        ),
        (
            files.xlsx(),
            "prices.docx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "prices.xlsx",
        ),
        (
            files.pptx(),
            "slides.pptx",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "slides.pptx",
        ),
        (files.odt(), "letter.odt", "application/vnd.oasis.opendocument.text", "letter.odt"),
        (
            files.odt("application/vnd.oasis.opendocument.spreadsheet"),
            "sheet.odt",
            "application/vnd.oasis.opendocument.spreadsheet",
            "sheet.ods",
        ),
        (
            files.odt("application/vnd.oasis.opendocument.presentation"),
            None,
            "application/vnd.oasis.opendocument.presentation",
            "file.odp",
        ),
        (files.ole_document("WordDocument"), "old.doc", "application/msword", "old.doc"),
        (files.ole_document("Workbook"), "old.doc", "application/vnd.ms-excel", "old.xls"),
        (files.ole_document("Book"), "old.xls", "application/vnd.ms-excel", "old.xls"),
        (
            files.ole_document("PowerPoint Document"),
            "talk.exe",
            "application/vnd.ms-powerpoint",
            "talk.ppt",
        ),
        # Two applications' streams at the top: the declared extension chooses between them.
        (
            files.ole_document("WordDocument", "Workbook"),
            "both.xls",
            "application/vnd.ms-excel",
            "both.xls",
        ),
        (files.text_file(), "question.txt", "text/plain", "question.txt"),
        (files.text_file(), "run.bat", "text/plain", "run.txt"),
    ],
)
def test_documents_are_passed_on_unchanged_under_their_real_type(
    data: bytes, name: str | None, content_type: str, expected_name: str
) -> None:
    prepared = prepare_upload(data, name, max_bytes=LIMIT)

    assert prepared == PreparedFile(
        data=data,
        name=expected_name,
        content_type=content_type,
        kind=AttachmentKind.FILE,
        width=None,
        height=None,
        thumbnail=None,
    )
    assert prepared.content_type in ALLOWED_TYPES
    assert prepared.sha256 == hashlib.sha256(data).hexdigest()
    assert prepared.size == len(data)


def test_an_ole_file_with_two_applications_and_no_telling_name_is_refused() -> None:
    assert sniff_content_type(files.ole_document("WordDocument", "Workbook"), "both") is None


@pytest.mark.parametrize(
    "text",
    [
        b"Hello, is this still available?\n",
        "Grüße aus Köln — 2 Stück, bitte.\r\n".encode(),
        "\ufeffWith a UTF-8 byte-order mark.\n".encode(),
        "Über UTF-16, little-endian.\n".encode("utf-16"),
        b"\xfe\xff" + "Big-endian UTF-16.\n".encode("utf-16-be"),
        b"I <3 this teapot. Price < 20 EUR?\tYes.\n",
        "ご質問ありがとうございます。".encode(),
    ],
)
def test_plain_text_is_accepted(text: bytes) -> None:
    assert sniff_content_type(text) == "text/plain"
    assert prepare_upload(text, None, max_bytes=LIMIT).name == "file.txt"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("No byte-order mark.\n".encode("utf-16-le"), id="utf16-without-bom"),
        pytest.param("Caf\xe9 in Latin-1\n".encode("latin-1"), id="not-utf8"),
        pytest.param(b"colour \x1b[31mred\x1b[0m\n", id="terminal-escapes"),
        pytest.param(b"  \n <html><p>hi</p></html>", id="html-after-blank-lines"),
        pytest.param(b"<p>Hello</p>", id="starts-with-a-tag"),
        pytest.param(b'<?xml version="1.0"?><order/>', id="xml"),
        pytest.param(b"Harmless at first.\n<SCRIPT>alert(1)</SCRIPT>\n", id="script-inside"),
        pytest.param(b"Look: < svg onload=alert(1)>\n", id="svg-inside"),
        pytest.param("\ufeff<!doctype html>".encode(), id="html-after-bom"),
        pytest.param(b"<svg/onload=alert(1)>", id="svg-without-space"),
    ],
)
def test_binary_or_markup_is_not_text(data: bytes) -> None:
    assert sniff_content_type(data) is None
    with pytest.raises(BadRequest) as refused:
        prepare_upload(data, "notes.txt", max_bytes=LIMIT)
    assert refused.value.errcode == "BAZAAR_FILE_TYPE"


def test_the_type_comes_from_the_bytes_never_the_name() -> None:
    prepared = prepare_upload(files.png(20, 20), "statement.pdf", max_bytes=LIMIT)

    assert prepared.content_type == "image/png"
    assert prepared.name == "statement.png"
    assert sniff_content_type(files.pdf(), "photo.jpg") == "application/pdf"
