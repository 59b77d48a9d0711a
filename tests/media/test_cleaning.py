"""A buyer's picture as others will receive it: upright, without its metadata, with a thumbnail,
or refused from its shape before a pixel is decoded; a product image by the same limits."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import ExifTags, Image, ImageCms

from bridge.core.models import AttachmentKind
from bridge.errors import BadRequest
from bridge.media import cleaning
from bridge.media.cleaning import ImageLimits, check_image
from bridge.media.uploads import prepare_upload
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


def test_an_animation_with_too_many_frames_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    data = files.animated_gif(frames=5)
    assert prepare_upload(data, "long.gif", max_bytes=LIMIT).content_type == "image/gif"

    monkeypatch.setattr(cleaning, "MAX_FRAMES", 4)
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
    assert check_image(files.png(640, 480)) == cleaning.CheckedImage("image/png", 640, 480)
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
