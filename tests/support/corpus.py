"""Large images in the codings whose decoders hold more than their pixels: progressive and multi-scan JPEGs,
interlaced PNGs, WebP, multi-page TIFF, and the plain forms beside them. Made at test time (Pillow, plus
libjpeg-turbo's ``jpegtran`` for what Pillow cannot write; the interlaced PNG writer is below) and cached
under ``out/test-corpus`` (nothing binary is committed).

Each entry says how it was made, so a memory figure can be read against its coding.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "out" / "test-corpus"
VERSION = "3"  # bump when an entry's recipe changes
# The fastest compression where the file's size does not matter: what a decoder holds does not depend on it, and
# every fresh clone makes the corpus (22 s of CPU against 35 s at the default)
FAST = 1


def scene(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A photo-like scene: a gradient, a disc and some noise (so that codecs have real work to do)."""
    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.effect_noise((max(1, width // 8), max(1, height // 8)), 40).resize((width, height)).convert("RGB")
    image = Image.blend(base, noise, 0.3)
    ImageDraw.Draw(image).ellipse((width // 6, height // 6, width // 2, height // 2), fill=(200, 40, 30))
    if mode == "RGBA":
        alpha = Image.linear_gradient("L").resize((width, height))
        image.putalpha(alpha)
        return image
    return image.convert(mode)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def interlaced_png(image: Image.Image) -> bytes:
    """An Adam7-interlaced PNG (Pillow reads them but does not write them): filter 0 on every row."""
    mode_bytes = {"RGB": (2, 3), "RGBA": (6, 4), "L": (0, 1)}
    colour_type, channels = mode_bytes[image.mode]
    width, height = image.size
    pixels = np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(height, width, channels)
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    raw = bytearray()
    for x0, y0, dx, dy in passes:
        if x0 >= width:
            continue
        sub = pixels[y0::dy, x0::dx].reshape(-1, len(range(x0, width, dx)) * channels)  # the pass's rows
        raw += np.hstack([np.zeros((len(sub), 1), dtype=np.uint8), sub]).tobytes()  # each after its filter byte

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 1)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw), FAST))
        + chunk(b"IEND", b"")
    )


def jpegtran(data: bytes, *arguments: str) -> bytes:
    """libjpeg-turbo's lossless transcoder (Debian: libjpeg-turbo-progs; ``make test`` installs it)."""
    tool = shutil.which("jpegtran")
    if tool is None:
        raise RuntimeError("jpegtran is missing: apt-get install libjpeg-turbo-progs (make test does)")
    return subprocess.run([tool, *arguments], input=data, capture_output=True, check=True).stdout


def multi_scan_baseline(image: Image.Image) -> bytes:
    """A baseline (sequential) JPEG with one scan per component: decoded through the whole-image buffer."""
    scans = CACHE / "one-scan-per-component.txt"
    scans.parent.mkdir(parents=True, exist_ok=True)
    scans.write_text("".join(f"{c}: 0-63, 0, 0;\n" for c in range(len(image.getbands()))), encoding="utf-8")
    return jpegtran(encode(image, "JPEG", quality=85, subsampling=0), "-scans", str(scans))


def multipage_tiff(pages: list[Image.Image], **options: object) -> bytes:
    buffer = io.BytesIO()
    pages[0].save(buffer, format="TIFF", save_all=True, append_images=pages[1:], **options)
    return buffer.getvalue()


def animated_gif(frames: list[Image.Image]) -> bytes:
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


@dataclass(frozen=True)
class Entry:
    name: str
    suffix: str
    make: Callable[[], bytes]
    family: str  # progressive | multi-scan | interlaced | multi-page | plain | ...


W, H = 6000, 4000  # a 24-megapixel photo


def entries() -> list[Entry]:
    return [
        Entry("jpeg-baseline-420", ".jpg", lambda: encode(scene(W, H), "JPEG", quality=85), "plain"),
        Entry(
            "jpeg-progressive-444",
            ".jpg",
            lambda: encode(scene(W, H), "JPEG", quality=85, progressive=True, subsampling=0),
            "progressive",
        ),
        Entry(
            "jpeg-progressive-420",
            ".jpg",
            lambda: encode(scene(W, H), "JPEG", quality=85, progressive=True, subsampling=2),
            "progressive",
        ),
        Entry(
            "jpeg-progressive-pass-through",
            ".jpg",
            lambda: encode(scene(2000, 1500), "JPEG", quality=85, progressive=True, subsampling=0),
            "progressive",
        ),
        Entry(
            "jpeg-progressive-cmyk",
            ".jpg",
            lambda: encode(scene(4000, 3000).convert("CMYK"), "JPEG", quality=85, progressive=True),
            "progressive",
        ),
        Entry(
            "jpeg-progressive-grey",
            ".jpg",
            lambda: encode(scene(W, H).convert("L"), "JPEG", quality=85, progressive=True),
            "progressive",
        ),
        Entry("jpeg-multi-scan-444", ".jpg", lambda: multi_scan_baseline(scene(W, H)), "multi-scan"),
        Entry(
            "jpeg-arithmetic-progressive",
            ".jpg",
            lambda: jpegtran(encode(scene(3000, 2000), "JPEG", quality=85), "-arithmetic", "-progressive"),
            "progressive",
        ),
        Entry("png-rgb", ".png", lambda: encode(scene(4000, 3000), "PNG", compress_level=FAST), "plain"),
        Entry("png-rgb-interlaced", ".png", lambda: interlaced_png(scene(4000, 3000)), "interlaced"),
        Entry("png-rgba-interlaced", ".png", lambda: interlaced_png(scene(4000, 3000, "RGBA")), "interlaced"),
        # Pillow's default compression: 14 MB, under Rekognition's 15 MB for an S3 object (19.8 MB at FAST)
        Entry("png-rgba-large", ".png", lambda: encode(scene(7000, 5000, "RGBA"), "PNG"), "plain"),
        Entry("png-grey-interlaced", ".png", lambda: interlaced_png(scene(W, H, "L")), "interlaced"),
        Entry(
            "png-16-bit",
            ".png",
            lambda: encode(scene(3000, 2000, "L").convert("I;16"), "PNG", compress_level=FAST),
            "plain",
        ),
        Entry(
            "png-palette-transparent",
            ".png",
            lambda: encode(scene(4000, 3000).convert("P"), "PNG", transparency=0, compress_level=FAST),
            "plain",
        ),
        Entry("gif", ".gif", lambda: encode(scene(4000, 3000).convert("P"), "GIF"), "plain"),
        Entry(
            "gif-animated",
            ".gif",
            lambda: animated_gif([scene(3000, 2000).rotate(angle).convert("P") for angle in (0, 90, 180)]),
            "multi-page",
        ),
        Entry(
            "gif-interlaced",
            ".gif",
            lambda: encode(scene(4000, 3000).convert("P"), "GIF", interlace=True),
            "interlaced",
        ),
        Entry("webp-lossy", ".webp", lambda: encode(scene(4000, 3000), "WEBP", quality=80), "plain"),
        Entry("webp-lossless", ".webp", lambda: encode(scene(3000, 2000), "WEBP", lossless=True, method=0), "plain"),
        Entry("webp-alpha", ".webp", lambda: encode(scene(4000, 3000, "RGBA"), "WEBP", quality=80), "plain"),
        Entry(
            "tiff-multi-page",
            ".tif",
            lambda: multipage_tiff([scene(3000, 2000), scene(3000, 2000).rotate(180)], compression="tiff_lzw"),
            "multi-page",
        ),
        Entry("tiff-jpeg", ".tif", lambda: encode(scene(4000, 3000), "TIFF", compression="jpeg"), "plain"),
        Entry(
            "tiff-tiled", ".tif", lambda: encode(scene(4000, 3000), "TIFF", tiled=True, tile_size=(256, 256)), "plain"
        ),
        Entry("bmp", ".bmp", lambda: encode(scene(4000, 3000), "BMP"), "plain"),
    ]


def path(entry: Entry) -> Path:
    """The entry's file, made once and kept (the cache is keyed by ``VERSION``)."""
    target = CACHE / VERSION / f"{entry.name}{entry.suffix}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(f"{target.suffix}.{os.getpid()}.tmp")  # test workers make it side by side
        temporary.write_bytes(entry.make())
        temporary.replace(target)
    return target


def huge_progressive_jpeg() -> Path:
    """13376 x 13376, progressive, 4:4:4, flat: 2.1 MB on disk, 1.07 GB of coefficients to decode (just under
    Pillow's decompression-bomb limit of 178,956,970 pixels). Making it holds about 1.8 GB for 5 s, once."""
    entry = Entry(
        "jpeg-progressive-13376",
        ".jpg",
        lambda: encode(
            Image.new("RGB", (13376, 13376), (90, 140, 200)), "JPEG", quality=85, progressive=True, subsampling=0
        ),
        "progressive",
    )
    return path(entry)
