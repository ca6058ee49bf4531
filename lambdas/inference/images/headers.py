"""Read a JPEG's, PNG's or WebP's header without Pillow: format, size, mode, EXIF orientation and frames.

The Rekognition path sends most images by reference after looking only at their first 64 KB; importing
Pillow for that costs about 25-30 ms of cold start (``make bench`` row 1). These parsers cover the common
cases exactly as Pillow reports them and return None for anything else (MPO, 12-bit JPEG, a PNG with its
own EXIF, damaged markers...), so the caller falls back to Pillow. A test checks that both agree.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple

# Pillow's default Image.MAX_IMAGE_PIXELS; Image.open refuses more than twice this (DecompressionBombError).
# tests/unit/inference/images/test_headers.py checks it against the installed Pillow.
PILLOW_MAX_IMAGE_PIXELS = 89_478_485
EXIF_ORIENTATION_TAG = 0x0112
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PROGRESSIVE_SOF = {0xC2, 0xC6, 0xCA, 0xCE}
COEFFICIENT_BYTES = 64 * 2  # libjpeg keeps a 8x8 block of 16-bit coefficients per block of each component
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


class JpegLayout(NamedTuple):
    """How a JPEG is coded, as far as decoding memory is concerned.

    A progressive JPEG, or a baseline one whose first scan does not carry every component (multi-scan), cannot
    be decoded a row at a time: libjpeg keeps the whole image's DCT coefficients, two bytes per sample of
    every component at full resolution, whatever the output scale (``draft``). A 6000 x 4000 4:4:4
    progressive photo of 300 KB holds 144 MB of them (measured: 163 MB peak with the 1/2-scale output)."""

    progressive: bool
    sampling: tuple[tuple[int, int], ...]  # (horizontal, vertical) sampling factor of each component
    buffered: bool | None  # the whole-image coefficient buffer is needed; None: the header did not say

    def coefficient_bytes(self, width: int, height: int) -> int:
        """What libjpeg's whole-image coefficient arrays hold: blocks padded to whole MCUs, per component."""
        if not self.sampling:
            return 0
        h_max = max(h for h, _ in self.sampling)
        v_max = max(v for _, v in self.sampling)
        mcus_across = -(-width // (8 * h_max))
        mcus_down = -(-height // (8 * v_max))
        return sum(mcus_across * h * mcus_down * v * COEFFICIENT_BYTES for h, v in self.sampling)

    def decoder_bytes(self, width: int, height: int) -> int:
        """The coefficient buffer when decoding needs it (or when the header could not tell), else nothing."""
        return 0 if self.buffered is False else self.coefficient_bytes(width, height)


@dataclass(frozen=True)
class Header:
    """What an image's first bytes say, without decoding pixels."""

    format: str | None
    width: int
    height: int
    mode: str
    orientation: int | None  # None: not known from the bytes read (an EXIF block past them)
    frames: int | None  # None: not known from the bytes read, or more than were counted (a TIFF's pages)
    # How a JPEG is coded (its decoding memory). Not part of equality: Pillow cannot tell a multi-scan
    # baseline JPEG from a plain one, and the parsers must agree on everything else.
    jpeg: JpegLayout | None = field(default=None, compare=False)
    # A TIFF's unit of decoding, (width, rows, bytes per pixel) of a strip or tile (``decode._layout``).
    layout: tuple[int, int, int] | None = field(default=None, compare=False)

    @property
    def settled(self) -> bool:
        """Everything that decides whether the image passes untouched is known (orientation, frames)."""
        return self.orientation is not None and self.frames is not None


class TooManyPixels(ValueError):
    """The header declares more pixels than Pillow would open (a decompression bomb)."""


def probe(data: bytes) -> Header | None:
    """The header of a plain JPEG, PNG or still WebP; None when these parsers are not sure (use Pillow)."""
    try:
        if data.startswith(b"\xff\xd8"):
            header = _jpeg(data)
        elif data.startswith(PNG_SIGNATURE):
            header = _png(data)
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            header = _webp(data)
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
    frame: Header | None = None
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
            break  # the header goes on past what we were given
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00") and frame is None:
            orientation = _exif_orientation(segment[6:])
        elif marker == 0xE2 and segment.startswith(b"MPF\x00"):
            return None  # a multi-picture file: Pillow calls it MPO
        elif marker in _SOF and frame is None:
            precision, height, width, components = struct.unpack(">BHHB", segment[:6])
            if precision != 8 or components not in _JPEG_MODES or not width or not height:
                return None
            sampling = tuple(
                (segment[7 + 3 * index] >> 4, segment[7 + 3 * index] & 0x0F) for index in range(components)
            )
            if any(not 1 <= h <= 4 or not 1 <= v <= 4 for h, v in sampling):
                return None
            progressive = marker in _PROGRESSIVE_SOF
            layout = JpegLayout(progressive, sampling, True if progressive else None)
            frame = Header("JPEG", width, height, _JPEG_MODES[components], orientation, 1, layout)
            if progressive:
                return frame
        elif marker == 0xDA:
            if frame is None or frame.jpeg is None:
                return None  # scan data before any frame header
            # A first scan with fewer components than the frame: the scans that follow carry the others, and
            # the whole image's coefficients are kept until the last one.
            in_scan = segment[0] if segment else 0
            layout = JpegLayout(False, frame.jpeg.sampling, in_scan < len(frame.jpeg.sampling))
            return Header(frame.format, frame.width, frame.height, frame.mode, frame.orientation, 1, layout)
        position += 2 + length
    return frame  # the frame header without its first scan: how it is coded stays unknown (buffered None)


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


def _webp(data: bytes) -> Header | None:
    """A WebP's canvas, from its first chunk. Pillow's WebP reader needs the whole file even for its size, and
    opening one allocates its canvas twice over (libwebp's animation decoder): it is never opened in the function's
    own process (``prepare.py``). An extended file's EXIF (orientation) and animation are left unknown."""
    kind, chunk = data[12:16], data[20:40]
    orientation: int | None = 1
    frames: int | None = 1
    if kind == b"VP8 " and chunk[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", chunk[6:10])
        width, height, alpha = width & 0x3FFF, height & 0x3FFF, False
    elif kind == b"VP8L" and chunk[:1] == b"\x2f":
        (bits,) = struct.unpack("<I", chunk[1:5])
        width, height, alpha = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool(bits >> 28 & 1)
    elif kind == b"VP8X" and len(chunk) >= 10:
        flags = chunk[0]
        width = int.from_bytes(chunk[4:7], "little") + 1
        height = int.from_bytes(chunk[7:10], "little") + 1
        alpha = bool(flags & 0x10)
        if flags & 0x08:
            orientation = None  # an EXIF chunk, after the pixels or far along: Pillow reads it
        if flags & 0x02:
            frames = None  # animated: Pillow counts the frames
    else:
        return None
    if not width or not height:
        return None
    return Header("WEBP", width, height, "RGBA" if alpha else "RGB", orientation, frames)


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
    if mode is None:
        return None
    # The pixels start past the bytes read (a large text, XMP or ICC chunk first): the size and mode are known
    # from IHDR, an eXIf or acTL chunk may still follow.
    return Header("PNG", width, height, mode, None, None)
