"""A buyer's upload checked whole: empty, disguised, broken or too large files are refused with
a reason the buyer can read."""

from __future__ import annotations

import pytest
from PIL import ImageFile

from bridge.errors import BadRequest, TooLarge
from bridge.media.uploads import prepare_upload
from tests.support import files

LIMIT = 5 * 1024 * 1024

# -- Refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "errcode"),
    [
        pytest.param(b"", "empty.txt", "BAZAAR_EMPTY_FILE", id="empty"),
        pytest.param(files.html_named_png(), "cat.png", "BAZAAR_FILE_TYPE", id="html-as-png"),
        pytest.param(files.svg_with_script(), "cat.png", "BAZAAR_FILE_TYPE", id="svg-as-png"),
        pytest.param(files.svg_with_script(), "cat.svg", "BAZAAR_FILE_TYPE", id="svg"),
        pytest.param(files.zip_not_office(), "cv.docx", "BAZAAR_FILE_TYPE", id="zip-as-docx"),
        pytest.param(files.docm(), "cv.docx", "BAZAAR_FILE_TYPE", id="macros"),
        pytest.param(files.odt("application/x-evil"), "a.odt", "BAZAAR_FILE_TYPE", id="bad-odf"),
        pytest.param(files.ole_document("Other"), "a.doc", "BAZAAR_FILE_TYPE", id="ole-not-office"),
        pytest.param(files.exe_like(), "invoice.pdf", "BAZAAR_FILE_TYPE", id="exe-as-pdf"),
        pytest.param(files.truncated_jpeg(), "cut.jpg", "BAZAAR_BROKEN_IMAGE", id="cut-jpeg"),
        pytest.param(files.truncated_png(), "cut.png", "BAZAAR_BROKEN_IMAGE", id="cut-png"),
        pytest.param(files.png_with_bad_checksum(), "x.png", "BAZAAR_BROKEN_IMAGE", id="bad-crc"),
        pytest.param(b"\x89PNG\r\n\x1a\nnot really", "x.png", "BAZAAR_BROKEN_IMAGE", id="fake-png"),
        # 56 megapixels: over the bridge's own cap (50), under Pillow's.
        pytest.param(files.image_claiming(8000, 7000), "big.png", "BAZAAR_BROKEN_IMAGE", id="56mp"),
        # 100 and 400 megapixels: Pillow's DecompressionBombWarning, then its error.
        pytest.param(
            files.image_claiming(10_000, 10_000), "b.png", "BAZAAR_BROKEN_IMAGE", id="100mp"
        ),
        pytest.param(
            files.image_claiming(20_000, 20_000), "b.png", "BAZAAR_BROKEN_IMAGE", id="400mp"
        ),
    ],
)
def test_disguised_broken_and_empty_files_are_refused(data: bytes, name: str, errcode: str) -> None:
    with pytest.raises(BadRequest) as refused:
        prepare_upload(data, name, max_bytes=LIMIT)

    assert refused.value.status == 400
    assert refused.value.errcode == errcode
    # A sentence a buyer can read, not a library's complaint.
    assert refused.value.error[0].isupper()
    assert refused.value.error.endswith(".")
    assert "PIL" not in refused.value.error


def test_a_cut_image_is_refused_after_a_library_lets_pillow_load_cut_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Importing Synapse in the same process does this.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(BadRequest) as refused:
        prepare_upload(files.truncated_jpeg(), "cut.jpg", max_bytes=LIMIT)
    assert refused.value.errcode == "BAZAAR_BROKEN_IMAGE"


def test_a_file_over_the_limit_is_too_large() -> None:
    data = files.pdf()

    with pytest.raises(TooLarge) as refused:
        prepare_upload(data, "big.pdf", max_bytes=len(data) - 1)

    assert (refused.value.status, refused.value.errcode) == (413, "M_TOO_LARGE")
    assert refused.value.error == f"The file is larger than {len(data) - 1} bytes."
    assert prepare_upload(data, "big.pdf", max_bytes=len(data)).size == len(data)


def test_the_size_limit_is_named_in_megabytes() -> None:
    megabyte = 1024 * 1024
    with pytest.raises(TooLarge, match=r"^The file is larger than 1 MB\.$"):
        prepare_upload(b"x" * (megabyte + 1), "a.txt", max_bytes=megabyte)
