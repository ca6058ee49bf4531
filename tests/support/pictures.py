"""Image fixtures made at test time with Pillow (nothing binary is committed)."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import Image, ImageDraw


def picture(width: int = 320, height: int = 240, mode: str = "RGB", color: Any = (30, 120, 200)) -> Image.Image:
    image = Image.new(mode, (width, height), color)
    if mode in ("RGB", "RGBA"):
        draw = ImageDraw.Draw(image)
        draw.rectangle((width // 4, height // 4, width // 2, height // 2), fill=(240, 200, 20))
    return image


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def jpeg(width: int = 320, height: int = 240, **options: Any) -> bytes:
    return encode(picture(width, height), "JPEG", quality=85, **options)


def png(width: int = 320, height: int = 240, mode: str = "RGB") -> bytes:
    return encode(picture(width, height, mode=mode), "PNG")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares the given size, with one empty IDAT: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def exif_rotated_jpeg(width: int = 320, height: int = 200, orientation: int = 6) -> bytes:
    image = picture(width, height)
    exif = image.getexif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", exif=exif.tobytes())


def animated_gif(frames: int = 3) -> bytes:
    images = [picture(200, 150, color=(i * 60, 80, 160)).convert("P") for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return buffer.getvalue()


def multipage_tiff(pages: int = 3) -> bytes:
    frames = [picture(96, 80, color=(i * 70, 90, 30)) for i in range(pages)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()
