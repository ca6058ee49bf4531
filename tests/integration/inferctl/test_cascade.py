"""The real detector alone: the same photo gives the same answer from many threads at once (the emulated services
answer a batch concurrently), bytes that are not an image are refused as the services refuse them, and a
transparent PNG is looked at on white."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

import pytest
from PIL import Image

from inferctl.emulator.models import cascade
from inferctl.emulator.models.base import ModelFault


def photo(name: str) -> bytes:
    return resources.files("inferctl.photos").joinpath(name).read_bytes()


def test_many_threads_at_once_see_what_one_sees():
    data = photo("astronaut.jpg")
    alone = cascade.detect(data)
    assert [p.name for p in alone if p.score >= 0.5] == ["eye", "face", "eye"]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: cascade.detect(data), range(24)))
    assert all(answer == alone for answer in answers)


def test_what_is_not_an_image_is_rejected():
    with pytest.raises(ModelFault) as raised:
        cascade.detect(b"plain text")
    assert raised.value.kind == "rejected"


def test_a_transparent_png_is_looked_at_on_white():
    with Image.open(io.BytesIO(photo("grace_hopper.jpg"))) as image:
        rgba = image.convert("RGBA")
    rgba.putalpha(255)
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    opaque = [p.name for p in cascade.detect(buffer.getvalue()) if p.score >= 0.5]
    clear = Image.new("RGBA", rgba.size, (0, 0, 0, 0))  # every pixel transparent: a white page, nothing on it
    buffer = io.BytesIO()
    clear.save(buffer, format="PNG")
    assert "face" in opaque
    assert cascade.detect(buffer.getvalue()) == []
