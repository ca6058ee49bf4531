"""Seeded mutations of small images in every format and coding the function takes: the fuzz corpus of
``tests/unit/inference/images/test_fuzz.py``, and the harness's run of its riskiest cases."""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from lambdas.contract import errors
from tests.support import corpus, pictures

SEED = 20261123
# What a file's own trouble may end as: an error document with one of these codes
IMAGE_CODES = frozenset(
    {
        errors.IMAGE_EMPTY,
        errors.IMAGE_UNREADABLE,
        errors.IMAGE_UNSUPPORTED,
        errors.IMAGE_TOO_SMALL,
        errors.IMAGE_TOO_LARGE,
        errors.IMAGE_ASPECT_RATIO,
    }
)
SUFFIXES = {"jpeg": ".jpg", "png": ".png", "gif": ".gif", "tiff": ".tif", "webp": ".webp", "bmp": ".bmp"}


@dataclass(frozen=True)
class Mutation:
    base: str  # which image of ``bases()``
    number: int
    kind: str  # what was done to it
    data: bytes

    @property
    def name(self) -> str:
        """A file name with the base's suffix (the function and the rule go by it)."""
        return f"{self.base}-{self.number:03d}-{self.kind}{SUFFIXES[self.base.split('-')[0]]}"


def bases() -> dict[str, bytes]:
    picture = pictures.picture(96, 80)
    return {
        "jpeg": pictures.encode(picture, "JPEG", quality=80),
        "jpeg-progressive": pictures.encode(picture, "JPEG", quality=80, progressive=True, subsampling=0),
        "jpeg-multi-scan": corpus.multi_scan_baseline(picture),
        "jpeg-progressive-cmyk": pictures.encode(picture.convert("CMYK"), "JPEG", progressive=True),
        "png-interlaced": corpus.interlaced_png(picture),
        "png-rgba-interlaced": corpus.interlaced_png(picture.convert("RGBA")),
        "gif-interlaced": pictures.encode(picture.convert("P"), "GIF", interlace=True),
        "webp-lossless-alpha": pictures.encode(picture.convert("RGBA"), "WEBP", lossless=True),
        "png": pictures.encode(picture, "PNG"),
        "png-rgba": pictures.encode(picture.convert("RGBA"), "PNG"),
        "gif": pictures.encode(picture.convert("P"), "GIF"),
        "gif-animated": pictures.animated_gif(3),
        "tiff": pictures.encode(picture, "TIFF"),
        "tiff-multipage": pictures.multipage_tiff(),
        "webp": pictures.encode(picture, "WEBP"),
        "bmp": pictures.encode(picture, "BMP"),
    }


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(("truncate", "flip", "insert", "zero", "duplicate", "header"))
    buffer = bytearray(data)
    if kind == "truncate":
        return kind, bytes(buffer[: rng.randrange(1, len(buffer))])
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            buffer[rng.randrange(len(buffer))] = rng.randrange(256)
    elif kind == "insert":
        at = rng.randrange(len(buffer))
        buffer[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    elif kind == "zero":
        start = rng.randrange(len(buffer))
        end = min(len(buffer), start + rng.randint(1, 64))
        buffer[start:end] = bytes(end - start)
    elif kind == "duplicate":
        start = rng.randrange(len(buffer))
        chunk = buffer[start : start + rng.randint(1, 256)]
        at = rng.randrange(len(buffer))
        buffer[at:at] = chunk
    else:  # damage the first 64 bytes, where headers live
        for _ in range(rng.randint(1, 6)):
            buffer[rng.randrange(min(64, len(buffer)))] = rng.randrange(256)
    return kind, bytes(buffer)


def mutations(per_base: int, seed: int = SEED) -> Iterator[Mutation]:
    """``per_base`` mutations of every base, the same ones on every run."""
    rng = random.Random(seed)
    for name, base in bases().items():
        for number in range(per_base):
            kind, data = mutate(base, rng)
            yield Mutation(name, number, kind, data)


def declared_size(base: str, data: bytes, width: int, height: int) -> bytes:
    """``data`` with its header declaring ``width`` x ``height`` and the pixels left as they are: a small file
    that asks a decoder for far more memory than it carries (JPEG, PNG, GIF, BMP, TIFF bases)."""
    buffer = bytearray(data)
    kind = base.split("-")[0]
    if kind == "jpeg":
        at = 2
        while buffer[at] == 0xFF and buffer[at + 1] not in (0xC0, 0xC1, 0xC2):
            at += 2 + int.from_bytes(buffer[at + 2 : at + 4], "big")
        buffer[at + 5 : at + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    elif kind == "png":
        buffer[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
        buffer[29:33] = zlib.crc32(bytes(buffer[12:29])).to_bytes(4, "big")
    elif kind == "gif":
        buffer[6:10] = width.to_bytes(2, "little") + height.to_bytes(2, "little")
    elif kind == "bmp":
        buffer[18:26] = width.to_bytes(4, "little", signed=True) + height.to_bytes(4, "little", signed=True)
    elif kind == "tiff":
        order = "<" if buffer[:2] == b"II" else ">"
        (ifd,) = struct.unpack(order + "I", buffer[4:8])
        (count,) = struct.unpack(order + "H", buffer[ifd : ifd + 2])
        for index in range(count):
            entry = ifd + 2 + 12 * index
            tag, kind_of = struct.unpack(order + "HH", buffer[entry : entry + 4])
            if tag in (256, 257):
                value = width if tag == 256 else height
                packed = struct.pack(order + ("H" if kind_of == 3 else "I"), value)
                buffer[entry + 8 : entry + 8 + len(packed)] = packed
    else:
        raise ValueError(f"no size field known for {base}")
    return bytes(buffer)
