"""Realistic big photos, made at test time: every format the function takes x metadata before the pixels (EXIF, XMP,
ICC, from none to 1 MB: what cameras and Photoshop write) x bit depth (8, 16) x layout (strips, one strip, tiles,
many pages, animation) x dimensions near and above the limits (Pillow's 89.5 and 179 megapixel bomb limits, and
what a function's decode budget holds).

Files are written without holding their pixels where the format allows it (PNG, TIFF, BMP: flat pixels through
zlib, RLE or raw strips, streamed), and with Pillow from a flat image otherwise (JPEG, WebP, GIF). Cached under
``out/test-corpus/big`` like the decode-memory corpus: nothing binary is committed.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PIL import Image

from tests.support.corpus import CACHE

VERSION = "1"  # bump when a recipe changes
KB, MB = 1024, 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR = (90, 140, 200)


# --- metadata blocks -----------------------------------------------------------------------------------------


def xmp_packet(size: int) -> bytes:
    """An XMP packet of about ``size`` bytes (Photoshop's history and a camera's description make them large)."""
    head = b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    tail = b'</x:xmpmeta><?xpacket end="w"?>'
    return head + b" " * max(0, size - len(head) - len(tail)) + tail


def icc_profile(size: int) -> bytes:
    """An ICC profile's bytes of ``size`` (a header that says so, then padding: decoders carry it, never parse it)."""
    header = struct.pack(">I4sI", size, b"lcms", 0x04300000) + b"mntrRGB XYZ " + bytes(100)
    return (header + bytes(max(0, size - len(header))))[:size]


def exif_block(size: int, orientation: int = 1) -> bytes:
    """A TIFF-structured EXIF block (``Exif\\0\\0`` not included) with an orientation and a maker note of ``size``."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010E] = "x" * max(1, size)  # ImageDescription: a large text, as some cameras write
    return exif.tobytes()


# --- PNG -----------------------------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


_PNG_COLOUR = {"L": (0, 1), "RGB": (2, 3), "RGBA": (6, 4)}


def png(width: int, height: int, mode: str = "RGB", depth: int = 8, metadata: int = 0, kind: str = "xmp") -> bytes:
    """A flat PNG whose metadata (an XMP ``iTXt``, an ``iCCP`` profile or an ``eXIf`` block of ``metadata`` bytes)
    comes before its pixels, as Photoshop writes it. The pixels stream through zlib a row at a time."""
    colour, channels = _PNG_COLOUR[mode]
    chunks = [_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))]
    if metadata and kind == "xmp":
        chunks.append(_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp_packet(metadata)))
    elif metadata and kind == "icc":
        chunks.append(_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile(metadata), 1)))
    elif metadata and kind == "exif":
        chunks.append(_chunk(b"eXIf", exif_block(metadata)))
    row = b"\x00" + bytes(width * channels * depth // 8)
    compressor = zlib.compressobj(6)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    chunks.append(_chunk(b"IDAT", pixels))
    chunks.append(_chunk(b"IEND", b""))
    return PNG_SIGNATURE + b"".join(chunks)


# --- TIFF ----------------------------------------------------------------------------------------------------


def tiff(
    width: int,
    height: int,
    *,
    samples: int = 3,
    depth: int = 8,
    layout: str = "strips",
    pages: int = 1,
    metadata: int = 0,
    kind: str = "xmp",
) -> bytes:
    """A flat, deflate-compressed TIFF. ``layout``: "strips" (64 rows each), "one-strip" (every row in one strip:
    libtiff decodes it whole, at the file's depth) or "tiles" (256 px). ``pages`` more pages follow (tiny ones:
    a scanner's stack, or a crafted count). ``metadata``: an XMP or ICC block of that size, stored before the
    pixels as cameras and Photoshop store it."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00")  # the first directory's offset is filled in at the end

    def put(data: bytes) -> int:
        offset = len(out)
        out.extend(data)
        if len(out) % 2:
            out.append(0)
        return offset

    meta_offset = put(xmp_packet(metadata) if kind == "xmp" else icc_profile(metadata)) if metadata else None
    pixel_bytes = samples * depth // 8
    if layout == "tiles":
        unit_width, unit_rows = 256, 256
        units = (-(-width // 256)) * (-(-height // 256))
    else:
        unit_width, unit_rows = width, (height if layout == "one-strip" else 64)
        units = -(-height // unit_rows)
    unit = zlib.compress(bytes(unit_width * unit_rows * pixel_bytes), 6)
    shared = put(unit)  # every strip or tile is the same flat block: stored once, pointed at by each
    offsets, counts = [shared] * units, [len(unit)] * units
    tags: list[tuple[int, int, list[int] | bytes]] = [
        (256, 4, [width]),
        (257, 4, [height]),
        (258, 3, [depth] * samples),
        (259, 3, [8]),  # Adobe deflate
        (262, 3, [2 if samples >= 3 else 1]),
        (277, 3, [samples]),
        (284, 3, [1]),
    ]
    if layout == "tiles":
        tags += [(322, 4, [256]), (323, 4, [256]), (324, 4, offsets), (325, 4, counts)]
    else:
        tags += [(273, 4, offsets), (278, 4, [unit_rows]), (279, 4, counts)]
    if samples == 4:
        tags.append((338, 3, [2]))  # unassociated alpha
    if metadata:
        assert meta_offset is not None
        tags.append((700 if kind == "xmp" else 34675, 1 if kind == "xmp" else 7, bytes(metadata)))
    first = _directory(out, sorted(tags, key=lambda tag: tag[0]), meta_offset)
    previous = first
    small = put(zlib.compress(bytes(3), 6))
    for _ in range(pages - 1):
        page = _directory(
            out,
            [
                *[(256, 4, [1]), (257, 4, [1]), (258, 3, [8, 8, 8]), (259, 3, [8]), (262, 3, [2])],
                *[(273, 4, [small]), (277, 3, [3]), (278, 4, [1]), (279, 4, [len(zlib.compress(bytes(3), 6))])],
            ],
            None,
        )
        struct.pack_into("<I", out, previous[1], page[0])
        previous = page
    struct.pack_into("<I", out, 4, first[0])
    return bytes(out)


_TIFF_TYPES = {1: ("B", 1), 3: ("H", 2), 4: ("I", 4), 7: ("B", 1)}


def _directory(
    out: bytearray, tags: list[tuple[int, int, list[int] | bytes]], meta_offset: int | None
) -> tuple[int, int]:
    """Append an IFD (its long arrays first); returns (its offset, where its next-IFD offset is)."""
    entries = []
    for tag, kind, values in tags:
        code, _ = _TIFF_TYPES[kind]
        if isinstance(values, bytes):  # metadata stored earlier: its count and offset
            entries.append(struct.pack("<HHII", tag, kind, len(values), meta_offset or 0))
            continue
        raw = struct.pack("<" + code * len(values), *values)
        if len(raw) <= 4:
            entries.append(struct.pack("<HHI", tag, kind, len(values)) + raw.ljust(4, b"\x00"))
        else:
            offset = len(out)
            out.extend(raw)
            if len(out) % 2:
                out.append(0)
            entries.append(struct.pack("<HHII", tag, kind, len(values), offset))
    start = len(out)
    out.extend(struct.pack("<H", len(entries)) + b"".join(entries) + b"\x00\x00\x00\x00")
    return start, len(out) - 4


# --- BMP (RLE8: a small file for a big image) ----------------------------------------------------------------


def bmp_rle8(width: int, height: int) -> bytes:
    """A palette BMP whose rows are run-length encoded: each row a few bytes, whatever its width."""
    row = b""
    left = width
    while left:
        run = min(255, left)
        row += bytes([run, 1])
        left -= run
    pixels = (row + b"\x00\x00") * height + b"\x00\x01"
    palette = b"".join(bytes([b, g, r, 0]) for r, g, b in [COLOUR, (250, 250, 250)] + [(0, 0, 0)] * 254)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    offset = 14 + len(info) + len(palette)
    header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    return header + info + palette + pixels


# --- with Pillow: JPEG, WebP, GIF ----------------------------------------------------------------------------


def _flat(width: int, height: int, mode: str = "RGB") -> Image.Image:
    colour = (*COLOUR, 128) if mode == "RGBA" else COLOUR  # half transparent: encoders keep the alpha
    return Image.new(mode, (width, height), colour)


def jpeg(width: int, height: int, *, progressive: bool = False, metadata: int = 0, orientation: int = 1) -> bytes:
    """A flat JPEG; ``metadata`` bytes of APP segments after SOI (EXIF in APP1 with the orientation, XMP in APP1,
    the rest as an ICC profile in APP2 chunks of 64 KB), as a camera or Photoshop writes them."""
    buffer = io.BytesIO()
    _flat(width, height).save(buffer, "JPEG", quality=80, progressive=progressive, subsampling=2)
    data = buffer.getvalue()
    segments = [_app(0xE1, b"Exif\x00\x00" + exif_block(min(metadata, 60_000), orientation))]
    if metadata > 60_000:
        segments.append(_app(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + xmp_packet(min(60_000, metadata - 60_000))))
    left = metadata - 120_000
    if left > 0:
        profile = icc_profile(left)
        parts = [profile[start : start + 65_000] for start in range(0, len(profile), 65_000)]
        for number, part in enumerate(parts, 1):
            segments.append(_app(0xE2, b"ICC_PROFILE\x00" + bytes([number, len(parts)]) + part))
    return data[:2] + b"".join(segments) + data[2:]


def _app(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def webp(width: int, height: int, *, alpha: bool = False, metadata: int = 0, frames: int = 1) -> bytes:
    """A flat lossless WebP, its EXIF and ICC (``metadata`` bytes between them) in the extended format's chunks."""
    image = _flat(width, height, "RGBA" if alpha else "RGB")
    options: dict[str, object] = {"lossless": True, "method": 0, "quality": 0}
    if metadata:
        options["exif"] = b"Exif\x00\x00" + exif_block(metadata // 2)
        options["icc_profile"] = icc_profile(metadata // 2)
    if frames > 1:
        options.update(save_all=True, append_images=[image.copy() for _ in range(frames - 1)], duration=100)
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", **options)
    return buffer.getvalue()


def gif(width: int, height: int, frames: int = 1) -> bytes:
    image = _flat(width, height).convert("P")
    buffer = io.BytesIO()
    extra = [image.copy() for _ in range(frames - 1)]
    image.save(buffer, "GIF", save_all=frames > 1, append_images=extra, duration=100)
    return buffer.getvalue()


# --- the family ----------------------------------------------------------------------------------------------

# How a case may end. "ok": a result; "large": IMAGE_TOO_LARGE; "either": a result, or IMAGE_TOO_LARGE when the
# function's memory cannot hold it (near a limit: which side depends on the memory size).
OK, LARGE, EITHER = "ok", "large", "either"


@dataclass(frozen=True)
class Case:
    name: str
    suffix: str
    make: Callable[[], bytes]
    expect: str  # at 1024 MB
    slice: bool = False  # part of `make test`'s slice (the rest runs with --big-photos=all)

    @property
    def file_name(self) -> str:
        return f"{self.name}{self.suffix}"


def path(case: Case) -> Path:
    """The case's file, made once and kept."""
    target = CACHE / "big" / VERSION / case.file_name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(f"{target.suffix}.{os.getpid()}.tmp")
        temporary.write_bytes(case.make())
        temporary.replace(target)
    return target


def family() -> list[Case]:
    """Every format x metadata x depth x layout x size near and above the limits (see the module's docstring)."""
    cases: list[Case] = []
    # The issue's own cases: the probe could not read the size from the first 64 KB, or the decoder holds more
    # than its pixels.
    cases += [
        Case("webp-9450-exif-320k", ".webp", lambda: webp(9450, 9450, metadata=320 * KB), EITHER, slice=True),
        Case("png-13300-rgba-xmp-70k", ".png", lambda: png(13300, 13300, "RGBA", metadata=70 * KB), LARGE, True),
        Case("tiff-9400x9500-16bit-one-strip", ".tif", lambda: _issue_tiff(16), EITHER, slice=True),
        Case("tiff-9400x9500-8bit-one-strip", ".tif", lambda: _issue_tiff(8), EITHER, slice=True),
    ]
    for metadata in (0, 70 * KB, 1 * MB):
        tag = f"meta-{metadata // KB}k"
        first = metadata == 70 * KB
        cases += [
            Case(f"jpeg-8000x6000-{tag}", ".jpg", partial(jpeg, 8000, 6000, metadata=metadata), OK, first),
            Case(
                f"jpeg-progressive-9000x9000-{tag}",
                ".jpg",
                partial(jpeg, 9000, 9000, progressive=True, metadata=metadata),
                EITHER,
            ),
            Case(
                f"jpeg-rotated-6000x4000-{tag}",
                ".jpg",
                partial(jpeg, 6000, 4000, metadata=metadata, orientation=6),
                OK,
            ),
            Case(f"png-6000x4000-rgb-{tag}", ".png", partial(png, 6000, 4000, metadata=metadata), OK, first),
            Case(f"png-6000x4000-16bit-{tag}", ".png", partial(png, 6000, 4000, depth=16, metadata=metadata), OK),
            Case(f"png-9400x9400-rgba-icc-{tag}", ".png", partial(png, 9400, 9400, "RGBA", 8, metadata, "icc"), EITHER),
            Case(f"webp-6000x4000-{tag}", ".webp", partial(webp, 6000, 4000, metadata=metadata), EITHER, first),
            Case(f"webp-4000x3000-alpha-{tag}", ".webp", partial(webp, 4000, 3000, alpha=True, metadata=metadata), OK),
            Case(f"tiff-6000x4000-strips-{tag}", ".tif", partial(tiff, 6000, 4000, metadata=metadata), OK, first),
            Case(
                f"tiff-6000x4000-16bit-one-strip-{tag}",
                ".tif",
                partial(tiff, 6000, 4000, depth=16, layout="one-strip", metadata=metadata),
                EITHER,
            ),
            Case(
                f"tiff-8000x6000-tiles-icc-{tag}",
                ".tif",
                partial(tiff, 8000, 6000, layout="tiles", metadata=metadata, kind="icc"),
                EITHER,
            ),
        ]
    cases += [
        Case("tiff-4000x3000-16bit-rgba-strips", ".tif", lambda: tiff(4000, 3000, samples=4, depth=16), OK),
        Case(
            "tiff-grey-16bit-one-strip-9000",
            ".tif",
            lambda: tiff(9000, 9000, samples=1, depth=16, layout="one-strip"),
            EITHER,
        ),
        Case("tiff-150000-pages", ".tif", lambda: tiff(640, 480, pages=150_000), OK, slice=True),
        Case("tiff-2000-pages-big-first", ".tif", lambda: tiff(6000, 4000, pages=2000), OK),
        Case("webp-animated-3000x2000-4", ".webp", lambda: webp(3000, 2000, frames=4), OK, slice=True),
        Case("gif-animated-4000x3000-3", ".gif", lambda: gif(4000, 3000, frames=3), OK, slice=True),
        Case("gif-9000x9000", ".gif", lambda: gif(9000, 9000), EITHER),
        Case("bmp-rle8-9000x9000", ".bmp", lambda: bmp_rle8(9000, 9000), EITHER, slice=True),
        Case("bmp-rle8-13000x13000", ".bmp", lambda: bmp_rle8(13000, 13000), LARGE),
        # Around Pillow's limits: 89.5 MP (decoded with a warning) and 179 MP (refused before decoding)
        Case("png-9450x9450-grey", ".png", lambda: png(9450, 9450, "L"), EITHER),
        Case("png-9500x9500-grey", ".png", lambda: png(9500, 9500, "L"), LARGE),
        Case("jpeg-13376x13376", ".jpg", lambda: jpeg(13376, 13376), EITHER),
        Case("jpeg-13500x13500", ".jpg", lambda: jpeg(13500, 13500), LARGE, slice=True),
        Case("webp-13000x13000", ".webp", lambda: webp(13000, 13000), LARGE),
    ]
    return cases


def _issue_tiff(depth: int) -> bytes:
    """The issue's file: 9400 x 9500, deflate, every row in one strip, RGBA."""
    return tiff(9400, 9500, samples=4, depth=depth, layout="one-strip")
