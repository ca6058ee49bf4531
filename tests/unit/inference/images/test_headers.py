"""The native JPEG/PNG header reader agrees with Pillow, and says "ask Pillow" when it is not sure."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from lambdas.inference.images import headers
from lambdas.inference.images.decode import describe
from tests.support import pictures


def pillow_header(data: bytes) -> headers.Header:
    image = Image.open(io.BytesIO(data))
    return describe(image)


def apng(frames: int = 3) -> bytes:
    drawn = [pictures.picture(120, 90, color=(i * 60, 80, 160)) for i in range(frames)]
    buffer = io.BytesIO()
    drawn[0].save(buffer, format="PNG", save_all=True, append_images=drawn[1:])
    return buffer.getvalue()


def sixteen_bit_png() -> bytes:
    sixteen = Image.new("I;16", (80, 60))
    sixteen.putdata([v * 13 for v in range(80 * 60)])
    return pictures.encode(sixteen, "PNG")


CORPUS = {
    "jpeg rgb": pictures.jpeg(640, 480),
    "jpeg grey": pictures.encode(pictures.picture(300, 200).convert("L"), "JPEG"),
    "jpeg cmyk": pictures.encode(pictures.picture(300, 200).convert("CMYK"), "JPEG"),
    "jpeg progressive": pictures.jpeg(500, 400, progressive=True),
    "jpeg exif 6": pictures.exif_rotated_jpeg(320, 200, orientation=6),
    "jpeg exif 3": pictures.exif_rotated_jpeg(320, 200, orientation=3),
    "png rgb": pictures.png(200, 100),
    "png rgba": pictures.png(200, 100, mode="RGBA"),
    "png palette": pictures.encode(pictures.picture(200, 100).convert("P"), "PNG"),
    "png grey": pictures.encode(pictures.picture(200, 100).convert("L"), "PNG"),
    "png 1-bit": pictures.encode(pictures.picture(200, 100).convert("1"), "PNG"),
    "png grey alpha": pictures.encode(pictures.picture(200, 100).convert("LA"), "PNG"),
    "png 16-bit": sixteen_bit_png(),
    "png animated": apng(3),
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_native_header_equals_pillows(name):
    data = CORPUS[name]
    assert headers.probe(data) == pillow_header(data)


def test_the_bomb_limit_is_pillows():
    assert headers.PILLOW_MAX_IMAGE_PIXELS == Image.MAX_IMAGE_PIXELS


def test_a_bombs_header_is_refused_natively():
    with pytest.raises(headers.TooManyPixels):
        headers.probe(pictures.png_header_only(30000, 30000))


@pytest.mark.parametrize(
    "data",
    [
        b"plain text",
        pictures.encode(pictures.picture(), "GIF"),
        pictures.jpeg(640, 480)[:100],  # the frame header is cut off
        b"\xff\xd8\x00\x00garbage",
        pictures.png(50, 50)[:20],
    ],
    ids=["text", "gif", "cut-jpeg", "damaged-jpeg", "cut-png"],
)
def test_anything_unusual_is_left_to_pillow(data):
    assert headers.probe(data) is None


def test_a_png_with_its_own_exif_is_left_to_pillow():
    data = pictures.png(50, 50)
    chunk = b"eXIf" + b"MM\x00*\x00\x00\x00\x08\x00\x00"
    exif = struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    with_exif = data[:33] + exif + data[33:]  # right after IHDR
    assert headers.probe(with_exif) is None
