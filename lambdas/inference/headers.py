"""Read a JPEG's or PNG's header without Pillow: format, size, mode, EXIF orientation and frames.

The Rekognition path sends most images by reference after looking only at their first 64 KB; importing
Pillow for that costs about 25-30 ms of cold start (``make bench`` row 1). These parsers cover the common
cases exactly as Pillow reports them and return None for anything else (MPO, 12-bit JPEG, a PNG with its
own EXIF, damaged markers...), so the caller falls back to Pillow. A test checks that both agree.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Pillow's default Image.MAX_IMAGE_PIXELS; Image.open refuses more than twice this (DecompressionBombError).
# tests/unit/test_headers.py checks it against the installed Pillow.
PILLOW_MAX_IMAGE_PIXELS = 89_478_485
EXIF_ORIENTATION_TAG = 0x0112
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD9)}
_JPEG_MODES = {1: "L", 3: "RGB", 4: "CMYK"}
# (bit depth, colour type) -> Pillow's mode
_PNG_MODES = {
    (1, 0): "1",
    (2, 0): "L",
    (4, 0): "L",
    (8, 0): "L",
    (16, 0): "I;16",
    (8, 2): "RGB",
    (16, 2): "RGB",
    (1, 3): "P",
    (2, 3): "P",
    (4, 3): "P",
    (8, 3): "P",
    (8, 4): "LA",
    (16, 4): "LA",
    (8, 6): "RGBA",
    (16, 6): "RGBA",
}


@dataclass(frozen=True)
class Header:
    """What an image's first bytes say, without decoding pixels."""

    format: str | None
    width: int
    height: int
    mode: str
    orientation: int
    frames: int


class TooManyPixels(ValueError):
    """The header declares more pixels than Pillow would open (a decompression bomb)."""


def probe(data: bytes) -> Header | None:
    """The header of a plain JPEG or PNG; None when these parsers are not sure (use Pillow)."""
    try:
        if data.startswith(b"\xff\xd8"):
            header = _jpeg(data)
        elif data.startswith(PNG_SIGNATURE):
            header = _png(data)
        else:
            return None
    except (struct.error, IndexError, ValueError) as exc:
        if isinstance(exc, TooManyPixels):
            raise
        return None
    if header is not None and header.width * header.height > 2 * PILLOW_MAX_IMAGE_PIXELS:
        raise TooManyPixels(f"{header.width}x{header.height} px")
    return header


def _jpeg(data: bytes) -> Header | None:
    position, orientation = 2, 1
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None  # not at a marker: damaged, let Pillow judge
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _STANDALONE:
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        segment = data[position + 4 : position + 2 + length]
        if len(segment) < length - 2:
            return None  # the header goes on past what we were given
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            orientation = _exif_orientation(segment[6:])
        elif marker == 0xE2 and segment.startswith(b"MPF\x00"):
            return None  # a multi-picture file: Pillow calls it MPO
        elif marker in _SOF:
            precision, height, width, components = struct.unpack(">BHHB", segment[:6])
            if precision != 8 or components not in _JPEG_MODES or not width or not height:
                return None
            return Header("JPEG", width, height, _JPEG_MODES[components], orientation, 1)
        elif marker == 0xDA:
            return None  # scan data before any frame header
        position += 2 + length
    return None


def _exif_orientation(tiff: bytes) -> int:
    """Orientation from the EXIF block's first IFD; 1 when it is absent or unreadable (as Pillow's getexif)."""
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        (offset,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[offset : offset + 2])
        for index in range(count):
            entry = tiff[offset + 2 + 12 * index : offset + 14 + 12 * index]
            tag, kind, _, value = struct.unpack(order + "HHI4s", entry)
            if tag == EXIF_ORIENTATION_TAG and kind == 3:  # SHORT
                (orientation,) = struct.unpack(order + "H", value[:2])
                return orientation if 1 <= orientation <= 8 else 1
    except (KeyError, struct.error):
        return 1
    return 1


def _png(data: bytes) -> Header | None:
    position = len(PNG_SIGNATURE)
    width = height = 0
    mode: str | None = None
    frames = 1
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        chunk = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            mode = _PNG_MODES.get((depth, colour))
            if mode is None or not width or not height:
                return None
        elif mode is None:
            return None  # IHDR must come first
        elif kind == b"acTL":
            (frames,) = struct.unpack(">I", chunk[:4])
        elif kind == b"eXIf":
            return None  # a PNG with EXIF (orientation): let Pillow read it
        elif kind == b"IDAT":
            return Header("PNG", width, height, mode, 1, max(1, frames))
        position += 12 + length
    return None
