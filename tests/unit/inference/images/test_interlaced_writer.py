"""The corpus's Adam7 PNG writer (``tests/support/corpus.py``; Pillow reads interlaced PNGs but does not write
them) against Pillow's reader: every pixel back as written, on sizes where passes are empty or partial."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.support.corpus import interlaced_png, scene

SIZES = [(1, 1), (2, 3), (3, 2), (5, 9), (8, 8), (9, 17), (13, 7), (64, 33)]


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_pillow_reads_back_every_pixel_of_an_interlaced_png(width: int, height: int, mode: str) -> None:
    image = scene(width, height, mode)
    with Image.open(io.BytesIO(interlaced_png(image))) as read:
        assert read.info.get("interlace") == 1
        assert (read.mode, read.size) == (mode, (width, height))
        assert read.tobytes() == image.tobytes()
