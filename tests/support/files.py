"""Sample attachments, real bytes built on the spot: photos with a GPS position, office
documents, and the disguised or broken files a buyer's upload must be refused for."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib

from PIL import ExifTags, Image, PngImagePlugin

CAMERA_MAKE = "Canon"
CAMERA_MODEL = "EOS 5D Mark IV"
LATITUDE = (52.0, 22.0, 12.5)
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf'
    b'-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator='
    b'"Jane Buyer"/></rdf:RDF></x:xmpmeta>'
)
COMMENT = b"taken at 12 Elm Street"
MARKER = (255, 0, 0)  # the colour of the top-left quarter of the sample pictures


def picture(width: int, height: int, *, alpha: bool = False) -> Image.Image:
    """Blue, with a red top-left quarter so that a turn or a flip shows."""
    mode, fill = ("RGBA", (0, 0, 255, 128)) if alpha else ("RGB", (0, 0, 255))
    image = Image.new(mode, (width, height), fill)
    image.paste(MARKER, (0, 0, max(1, width // 2), max(1, height // 2)))
    return image


def jpeg_with_gps(width: int = 60, height: int = 40, *, orientation: int = 6) -> bytes:
    """A JPEG carrying what a phone puts there: GPS position, camera make and model, an
    orientation (6: turn 90° clockwise to view), plus XMP and a comment."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = CAMERA_MAKE
    exif[ExifTags.Base.Model] = CAMERA_MODEL
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = LATITUDE
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (4.0, 53.0, 30.0)
    output = io.BytesIO()
    picture(width, height).save(output, "JPEG", quality=95, exif=exif, xmp=XMP, comment=COMMENT)
    return output.getvalue()


def png(width: int = 64, height: int = 48, *, alpha: bool = False) -> bytes:
    """A PNG with a text chunk naming its author (metadata to be stripped)."""
    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "Jane Buyer")
    output = io.BytesIO()
    picture(width, height, alpha=alpha).save(output, "PNG", pnginfo=text)
    return output.getvalue()


def animated_gif(frames: int = 3, *, width: int = 40, height: int = 30) -> bytes:
    """An animation of differently coloured frames, 100 ms each, with a comment."""
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    images = [
        Image.new("RGB", (width, height), colours[index % len(colours)]) for index in range(frames)
    ]
    output = io.BytesIO()
    images[0].save(
        output,
        "GIF",
        save_all=True,
        append_images=images[1:],
        duration=100,
        loop=0,
        comment=COMMENT,
    )
    return output.getvalue()


def webp(width: int = 50, height: int = 40) -> bytes:
    output = io.BytesIO()
    picture(width, height).save(output, "WEBP", quality=90, exif=_camera_exif(), xmp=XMP)
    return output.getvalue()


def _camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = CAMERA_MAKE
    exif[ExifTags.Base.Model] = CAMERA_MODEL
    return exif


def image_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` × `height` pixels: a decompression bomb's opening."""
    data = bytearray(png(1, 1))
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(header))
    return bytes(data)


def long_png(width: int, height: int) -> bytes:
    """A whole, valid grey PNG of `width` × `height` black pixels, written row by row so
    that a picture of millions of pixels never exists in memory: 1 × 39,000,000 is a
    76 KB file, a pixel bomb by shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    compressor = zlib.compressobj(9)
    rows_at_once = max(1, 1_000_000 // (width + 1))
    pixels = bytearray()
    for first in range(0, height, rows_at_once):
        rows = min(rows_at_once, height - first)
        pixels += compressor.compress(bytes((width + 1) * rows))  # filter byte 0, then zeros
    pixels += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", bytes(pixels))
        + chunk(b"IEND", b"")
    )


def noise_png(width: int, height: int, *, seed: int = 7) -> bytes:
    """An RGB PNG of random pixels: it hardly compresses, about 3 bytes a pixel."""
    noise = random.Random(seed).randbytes(width * height * 3)
    image = Image.frombytes("RGB", (width, height), noise)
    image.paste(MARKER, (0, 0, max(1, width // 2), max(1, height // 2)))
    output = io.BytesIO()
    image.save(output, "PNG", compress_level=1)
    return output.getvalue()


def truncated_jpeg() -> bytes:
    """A real photo cut off two thirds of the way through its pixel data."""
    output = io.BytesIO()
    Image.effect_noise((200, 150), 64).convert("RGB").save(output, "JPEG", quality=90)
    data = output.getvalue()
    return data[: len(data) * 2 // 3]


def truncated_png() -> bytes:
    output = io.BytesIO()
    Image.effect_noise((200, 150), 64).save(output, "PNG")
    data = output.getvalue()
    return data[: len(data) // 2]


def png_with_bad_checksum() -> bytes:
    """A PNG whose pixel data decodes but whose IDAT checksum is wrong: damaged in transit."""
    data = bytearray(png(64, 48))
    at = data.index(b"IDAT")
    length = int.from_bytes(data[at - 4 : at], "big")
    data[at + 4 + length] ^= 0xFF
    return bytes(data)


def pdf() -> bytes:
    """A one-page PDF with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] >>",
    ]
    output = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(output))
        output += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    table = len(output)
    output += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    output += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    output += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    output += b"startxref\n%d\n%%%%EOF\n" % table
    return bytes(output)


def _zip(entries: dict[str, bytes]) -> bytes:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return output.getvalue()


def _ooxml(folder: str, main_part: str, content_type: str) -> bytes:
    types = (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
        'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.'
        'openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
        f'"application/xml"/><Override PartName="/{folder}/{main_part}" ContentType='
        f'"{content_type}"/></Types>'
    )
    relationships = (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
        'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
        "schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
        f'" Target="{folder}/{main_part}"/></Relationships>'
    )
    return _zip(
        {
            "[Content_Types].xml": types.encode(),
            "_rels/.rels": relationships.encode(),
            f"{folder}/{main_part}": b'<?xml version="1.0" encoding="UTF-8"?><root/>',
        }
    )


def docx() -> bytes:
    return _ooxml(
        "word",
        "document.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    )


def xlsx() -> bytes:
    return _ooxml(
        "xl",
        "workbook.xml",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    )


def pptx() -> bytes:
    return _ooxml(
        "ppt",
        "presentation.xml",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
    )


def docm() -> bytes:
    """A Word document with a macro project: refused even when named .docx."""
    with zipfile.ZipFile(io.BytesIO(docx())) as source:
        entries = {name: source.read(name) for name in source.namelist()}
    return _zip({**entries, "word/vbaProject.bin": b"\xd0\xcf\x11\xe0 macro"})


def odt(mimetype: str = "application/vnd.oasis.opendocument.text") -> bytes:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as archive:
        archive.writestr("mimetype", mimetype, compress_type=zipfile.ZIP_STORED)
        archive.writestr("content.xml", b'<?xml version="1.0"?><office:document-content/>')
    return output.getvalue()


def zip_not_office() -> bytes:
    return _zip({"readme.txt": b"Just some files.\n", "photos/cat.jpg": b"\xff\xd8\xff"})


def ole_document(*streams: str) -> bytes:
    """A minimal OLE2 compound file ([MS-CFB], version 3) with `streams` at its top level
    (default "WordDocument"), as Word ("WordDocument"), Excel ("Workbook") and PowerPoint
    ("PowerPoint Document") write theirs; other names stand for other things kept in that
    container, like installers. The first stream holds 4 KB, the others nothing."""
    streams = streams or ("WordDocument",)
    end, free, fat_sector, no_entry = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    header = bytearray(512)
    header[0:8] = bytes.fromhex("d0cf11e0a1b11ae1")
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3, 0xFFFE, 9, 6)
    # One FAT sector (sector 0), the directory at sector 1, the mini stream cut-off, no
    # mini FAT, no DIFAT sectors, the first DIFAT entry pointing at the FAT sector.
    struct.pack_into("<IIIIIIIII", header, 0x2C, 1, 1, 0, 4096, end, 0, end, 0, 0)
    header[0x50:512] = struct.pack("<I", free) * 108

    # Sectors 2 to 9 hold the first stream's 4096 bytes.
    fat = [fat_sector, end, *range(3, 10), end]
    fat += [free] * (128 - len(fat))

    def entry(name: str, kind: int, right: int, child: int, start: int, size: int) -> bytes:
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        raw = bytearray(128)
        raw[: len(encoded)] = encoded
        struct.pack_into("<HBBIII", raw, 64, len(encoded), kind, 1, no_entry, right, child)
        struct.pack_into("<IQ", raw, 116, start, size)
        return bytes(raw)

    # The root's first child is entry 1; each further stream is the right sibling of the last.
    entries = [entry("Root Entry", 5, no_entry, 1, end, 0)]
    for index, name in enumerate(streams, start=1):
        right = index + 1 if index < len(streams) else no_entry
        entries.append(entry(name, 2, right, no_entry, *((2, 4096) if index == 1 else (end, 0))))
    empty = bytearray(128)
    struct.pack_into("<III", empty, 68, no_entry, no_entry, no_entry)
    entries += [bytes(empty)] * (-len(entries) % 4)
    directory = b"".join(entries)
    assert len(directory) == 512, "one directory sector holds four entries"
    return bytes(header) + struct.pack("<128I", *fat) + directory + bytes(range(256)) * 16


def html_named_png() -> bytes:
    return (
        b"<!DOCTYPE html>\n<html><body>"
        b"<script>fetch('/steal?c=' + document.cookie)</script></body></html>\n"
    )


def svg_with_script() -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
        b'width="10" height="10"><script>alert(document.domain)</script></svg>\n'
    )


def exe_like() -> bytes:
    """The opening of a Windows program: an MZ header pointing at a PE header."""
    dos_header = bytearray(64)
    dos_header[0:2] = b"MZ"
    struct.pack_into("<I", dos_header, 0x3C, 128)
    stub = b"This program cannot be run in DOS mode.\r\r\n$".ljust(64, b"\x00")
    return bytes(dos_header) + stub + b"PE\x00\x00" + struct.pack("<HH", 0x8664, 1) + bytes(200)


def text_file() -> bytes:
    return (
        "Hello! Is the blue teapot still available?\nCan you ship to Zürich — 2 pieces?\n".encode()
    )
