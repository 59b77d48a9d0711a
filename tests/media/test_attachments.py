"""A buyer's upload as others will receive it: the right type, no metadata, upright, named
safely, or refused with a reason the buyer can read."""

from __future__ import annotations

import hashlib
import io
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms

from bridge.core.models import AttachmentKind
from bridge.errors import BadRequest, TooLarge
from bridge.media import attachments
from bridge.media.attachments import (
    ALLOWED_TYPES,
    ImageLimits,
    PreparedFile,
    check_image,
    prepare_upload,
    safe_filename,
    sniff_content_type,
)
from tests.support import files

LIMIT = 5 * 1024 * 1024


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def is_red(pixel: tuple[int, ...]) -> bool:
    red, green, blue = pixel[:3]
    return red > 200 and green < 60 and blue < 60


def is_blue(pixel: tuple[int, ...]) -> bool:
    red, green, blue = pixel[:3]
    return blue > 200 and red < 60 and green < 60


# -- Images lose their metadata --------------------------------------------------------------------


def test_a_photo_loses_its_gps_position_camera_xmp_and_comment() -> None:
    original = files.jpeg_with_gps()
    before = decoded(original)
    exif = before.getexif()
    assert exif[ExifTags.Base.Make] == files.CAMERA_MAKE
    assert exif[ExifTags.Base.Model] == files.CAMERA_MODEL
    assert exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] == files.LATITUDE
    assert before.info["comment"] == files.COMMENT
    assert "xmp" in before.info

    prepared = prepare_upload(original, "IMG_0001.JPG", max_bytes=LIMIT)

    after = decoded(prepared.data)
    assert after.format == "JPEG"
    assert dict(after.getexif()) == {}
    assert after.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
    assert not {"exif", "xmp", "comment", "photoshop"} & after.info.keys()
    for trace in (files.CAMERA_MAKE.encode(), files.CAMERA_MODEL.encode(), b"Jane Buyer"):
        assert trace in original
        assert trace not in prepared.data
    assert files.COMMENT not in prepared.data
    assert prepared.name == "IMG_0001.jpg"
    assert prepared.content_type == "image/jpeg"
    assert prepared.kind is AttachmentKind.IMAGE


def test_an_upright_photo_goes_out_pixel_for_pixel_without_its_metadata() -> None:
    # A phone's upright photo, with a second picture after the first (as MPF files carry
    # previews and depth maps) and an ICC profile.
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    with Image.open(io.BytesIO(files.jpeg_with_gps(400, 300, orientation=1))) as taken:
        exif = taken.getexif()
        output = io.BytesIO()
        taken.save(
            output,
            "JPEG",
            quality=95,
            exif=exif,
            xmp=files.XMP,
            comment=files.COMMENT,
            icc_profile=srgb,
        )
    original = output.getvalue() + files.jpeg_with_gps(40, 30, orientation=1)
    for inside in (b"Exif", files.CAMERA_MAKE.encode(), b"xmpmeta", files.COMMENT):
        assert original.count(inside) >= 1, inside

    prepared = prepare_upload(original, "IMG_0001.JPG", max_bytes=LIMIT)

    for inside in (b"Exif", files.CAMERA_MAKE.encode(), b"xmpmeta", files.COMMENT):
        assert inside not in prepared.data, inside
    # Nothing after the first picture's end: the second picture is gone.
    assert prepared.data.endswith(b"\xff\xd9") and prepared.data.count(b"\xff\xd8") == 1
    cleaned, taken_pixels = decoded(prepared.data), decoded(original)
    assert dict(cleaned.getexif()) == {}
    assert cleaned.info.get("icc_profile") == srgb
    # Not encoded again: every pixel is as the camera stored it.
    assert (prepared.width, prepared.height) == (400, 300)
    assert cleaned.tobytes() == taken_pixels.tobytes()
    assert prepared.thumbnail is not None
    assert (prepared.thumbnail.width, prepared.thumbnail.height) == (320, 240)


def test_a_photo_is_turned_upright_by_its_orientation() -> None:
    original = files.jpeg_with_gps(60, 40, orientation=6)
    assert decoded(original).size == (60, 40)

    prepared = prepare_upload(original, "sideways.jpg", max_bytes=LIMIT)

    upright = decoded(prepared.data).convert("RGB")
    assert (prepared.width, prepared.height) == upright.size == (40, 60)
    # Orientation 6 means "turn 90° clockwise": the red top-left quarter ends top-right.
    assert is_red(upright.getpixel((30, 10)))
    assert is_blue(upright.getpixel((10, 10)))
    assert ExifTags.Base.Orientation not in decoded(prepared.data).getexif()


def test_a_png_loses_its_text_chunks_and_keeps_its_transparency() -> None:
    original = files.png(64, 48, alpha=True)
    assert decoded(original).info["Author"] == "Jane Buyer"

    prepared = prepare_upload(original, "logo.png", max_bytes=LIMIT)

    after = decoded(prepared.data)
    assert after.format == "PNG"
    assert "Author" not in after.info
    assert b"Jane Buyer" not in prepared.data
    assert after.mode == "RGBA"
    assert after.getpixel((60, 40)) == (0, 0, 255, 128)


def test_a_webp_loses_its_exif_and_xmp() -> None:
    original = files.webp()
    assert decoded(original).getexif()[ExifTags.Base.Make] == files.CAMERA_MAKE

    prepared = prepare_upload(original, None, max_bytes=LIMIT)

    after = decoded(prepared.data)
    assert after.format == "WEBP"
    assert dict(after.getexif()) == {}
    assert not {"exif", "xmp"} & after.info.keys()
    assert files.CAMERA_MODEL.encode() not in prepared.data
    assert prepared.name == "image.webp"


def test_an_animated_gif_keeps_its_frames_and_timing_but_not_its_comment() -> None:
    original = files.animated_gif(frames=3)
    assert decoded(original).info["comment"] == files.COMMENT

    prepared = prepare_upload(original, "dance.gif", max_bytes=LIMIT)

    after = Image.open(io.BytesIO(prepared.data))
    assert after.format == "GIF"
    assert after.n_frames == 3
    assert "comment" not in after.info
    assert files.COMMENT not in prepared.data
    colours = []
    for index in range(3):
        after.seek(index)
        assert after.info["duration"] == 100
        colours.append(after.convert("RGB").getpixel((5, 5)))
    assert colours == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    assert prepared.thumbnail is not None
    assert is_red(decoded(prepared.thumbnail.data).convert("RGB").getpixel((5, 5)))


def test_the_colour_profile_is_kept_while_the_colours_stay_in_its_space() -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgb, cmyk = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (10, 10), "red").save(rgb, "JPEG", icc_profile=profile)
    Image.new("CMYK", (10, 10), (0, 255, 255, 0)).save(cmyk, "JPEG", icc_profile=profile)

    kept = prepare_upload(rgb.getvalue(), "rgb.jpg", max_bytes=LIMIT)
    converted = prepare_upload(cmyk.getvalue(), "cmyk.jpg", max_bytes=LIMIT)

    assert decoded(kept.data).info["icc_profile"] == profile
    # CMYK pixels become RGB, which a CMYK profile would no longer describe.
    after = decoded(converted.data)
    assert after.mode == "RGB"
    assert "icc_profile" not in after.info
    assert is_red(after.getpixel((5, 5)))


def test_a_16_bit_grey_png_is_scaled_not_clipped() -> None:
    original = io.BytesIO()
    Image.new("I;16", (10, 10), 32768).save(original, "PNG")

    after = decoded(prepare_upload(original.getvalue(), "grey.png", max_bytes=LIMIT).data)

    assert (after.mode, after.getpixel((5, 5))) == ("L", 128)


# -- Thumbnails ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "expected_size"),
    [
        (files.jpeg_with_gps(1000, 500, orientation=1), (320, 160)),
        (files.jpeg_with_gps(400, 900, orientation=1), (142, 320)),
        (files.png(100, 80), (100, 80)),  # smaller: re-encoded, not enlarged
    ],
)
def test_every_image_has_a_thumbnail_within_320_pixels(
    original: bytes, expected_size: tuple[int, int]
) -> None:
    prepared = prepare_upload(original, "photo", max_bytes=LIMIT)

    thumbnail = prepared.thumbnail
    assert thumbnail is not None
    image = decoded(thumbnail.data)
    assert image.size == (thumbnail.width, thumbnail.height) == expected_size
    assert image.format == "JPEG"
    assert thumbnail.content_type == "image/jpeg"
    assert dict(image.getexif()) == {}
    assert thumbnail.size == len(thumbnail.data)
    assert thumbnail.sha256 == hashlib.sha256(thumbnail.data).hexdigest()


def test_a_translucent_image_gets_a_png_thumbnail() -> None:
    prepared = prepare_upload(files.png(800, 400, alpha=True), "logo.png", max_bytes=LIMIT)

    assert prepared.thumbnail is not None
    image = decoded(prepared.thumbnail.data)
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (320, 160))
    assert prepared.thumbnail.content_type == "image/png"
    assert image.getpixel((300, 150))[3] == 128


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


def test_an_animation_with_too_many_frames_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    data = files.animated_gif(frames=5)
    assert prepare_upload(data, "long.gif", max_bytes=LIMIT).content_type == "image/gif"

    monkeypatch.setattr(attachments, "MAX_FRAMES", 4)
    with pytest.raises(BadRequest) as refused:
        prepare_upload(data, "long.gif", max_bytes=LIMIT)

    assert refused.value.errcode == "BAZAAR_BROKEN_IMAGE"


# -- Images by shape: refused from the header, before a pixel is decoded -------------------------


def assert_refused_as_picture(refused: pytest.ExceptionInfo[BadRequest], *words: str) -> None:
    assert (refused.value.status, refused.value.errcode) == (400, "BAZAAR_BROKEN_IMAGE")
    assert refused.value.error[0].isupper() and refused.value.error.endswith(".")
    for word in words:
        assert word in refused.value.error


def test_a_76_kb_png_of_1_by_39_million_pixels_is_refused() -> None:
    bomb = files.long_png(1, 39_000_000)
    assert len(bomb) < 80_000
    with Image.open(io.BytesIO(bomb)) as image:
        assert image.size == (1, 39_000_000)  # a real PNG, not a header that lies

    with pytest.raises(BadRequest) as refused:
        prepare_upload(bomb, "thin.png", max_bytes=LIMIT)

    assert_refused_as_picture(refused, "1 × 39000000", "12000 pixels")


@pytest.mark.parametrize(
    ("size", "accepted"),
    [((4000, 100), True), ((4100, 100), False), ((100, 4000), True), ((100, 4100), False)],
)
def test_a_picture_longer_than_40_times_its_width_is_refused(
    size: tuple[int, int], accepted: bool
) -> None:
    data = files.long_png(*size)
    if accepted:
        assert (prepare_upload(data, "strip.png", max_bytes=LIMIT).width, size[1]) == size
        return
    with pytest.raises(BadRequest) as refused:
        prepare_upload(data, "strip.png", max_bytes=LIMIT)
    assert_refused_as_picture(refused, "long and narrow", "40 times")


def test_the_limits_given_are_the_ones_applied() -> None:
    limits = ImageLimits(max_side=600, max_pixels=200_000, max_aspect_ratio=3)
    assert prepare_upload(files.png(600, 300), "a.png", max_bytes=LIMIT, limits=limits).width == 600

    refusals = [
        (files.png(601, 300), "600 pixels"),  # a side
        (files.png(500, 401), "0.2 million"),  # 200,500 pixels
        (files.png(600, 199), "3 times"),  # the aspect ratio
    ]
    for data, words in refusals:
        with pytest.raises(BadRequest) as refused:
            prepare_upload(data, "a.png", max_bytes=LIMIT, limits=limits)
        assert_refused_as_picture(refused, words)


def test_a_jpeg_is_measured_before_it_is_decoded_too() -> None:
    limits = ImageLimits(max_side=1000, max_pixels=50_000_000, max_aspect_ratio=40)
    photo = files.jpeg_with_gps(1001, 600, orientation=1)  # the path that keeps the pixels

    with pytest.raises(BadRequest) as refused:
        prepare_upload(photo, "a.jpg", max_bytes=LIMIT, limits=limits)

    assert_refused_as_picture(refused, "1001 × 600", "1000 pixels")


@pytest.mark.parametrize(
    ("original", "size", "thumbnail_size"),
    [
        pytest.param(
            files.jpeg_with_gps(4000, 3000, orientation=1), (4000, 3000), (320, 240), id="jpeg"
        ),
        pytest.param(
            files.jpeg_with_gps(3000, 4000, orientation=6), (4000, 3000), (320, 240), id="turned"
        ),
        pytest.param(files.png(3000, 2000), (3000, 2000), (320, 213), id="png"),
        pytest.param(files.long_png(12_000, 300), (12_000, 300), (320, 8), id="long"),
    ],
)
def test_a_big_photo_is_accepted_with_its_thumbnail(
    original: bytes, size: tuple[int, int], thumbnail_size: tuple[int, int]
) -> None:
    prepared = prepare_upload(original, "big", max_bytes=LIMIT)

    assert (prepared.width, prepared.height) == size
    assert prepared.thumbnail is not None
    small = decoded(prepared.thumbnail.data).convert("RGB")
    assert small.size == (prepared.thumbnail.width, prepared.thumbnail.height) == thumbnail_size
    if original.startswith(b"\x89PNG") and size[1] > 300:
        # The red top-left quarter is where it was; the blue rest too.
        assert is_red(small.getpixel((thumbnail_size[0] // 4, thumbnail_size[1] // 4)))
        assert is_blue(small.getpixel((thumbnail_size[0] * 3 // 4, thumbnail_size[1] * 3 // 4)))


def test_a_product_image_is_checked_by_the_same_limits() -> None:
    assert check_image(files.png(640, 480)) == attachments.CheckedImage("image/png", 640, 480)
    assert check_image(files.jpeg_with_gps(800, 600)).width == 800

    cases = [
        (files.long_png(1, 39_000_000), "BAZAAR_BROKEN_IMAGE"),
        (files.long_png(4100, 100), "BAZAAR_BROKEN_IMAGE"),
        (files.truncated_png(), "BAZAAR_BROKEN_IMAGE"),
        (files.truncated_jpeg(), "BAZAAR_BROKEN_IMAGE"),
        (files.image_claiming(20_000, 20_000), "BAZAAR_BROKEN_IMAGE"),
        (files.html_named_png(), "BAZAAR_FILE_TYPE"),
    ]
    for data, errcode in cases:
        with pytest.raises(BadRequest) as refused:
            check_image(data)
        assert refused.value.errcode == errcode
    with pytest.raises(BadRequest):
        check_image(files.png(640, 480), ImageLimits(600, 1_000_000, 40))


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
    assert safe.rsplit(".", 1)[1] in attachments._EXTENSIONS[content_type]
