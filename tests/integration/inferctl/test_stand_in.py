"""The demo model's nearest-colour step, computed on whole arrays, gives exactly what the plain loop over pixels and
colours gives (the loop it replaced, kept here as the reference): every pixel's colour and closeness, and every
detection, on scenes, noise and smooth gradients (ties and the MAX_DISTANCE edge included)."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from inferctl.emulator.models import stand_in
from inferctl.samples import KINDS, scene


def loop_nearest(raw: bytes) -> tuple[list[int], list[float]]:
    """Per pixel, the nearest reference colour closer than MAX_DISTANCE (the first on a tie) and its closeness."""
    nearest, closeness = [], []
    for i in range(0, len(raw), 3):
        best, best_distance = -1, stand_in.MAX_DISTANCE
        for index, kind in enumerate(KINDS):
            r, g, b = kind.rgb
            distance = float(((raw[i] - r) ** 2 + (raw[i + 1] - g) ** 2 + (raw[i + 2] - b) ** 2) ** 0.5)
            if distance < best_distance:
                best, best_distance = index, distance
        nearest.append(best)
        closeness.append(1.0 - best_distance / stand_in.MAX_DISTANCE if best >= 0 else 0.0)
    return nearest, closeness


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def images() -> list[tuple[str, Image.Image]]:
    rng = random.Random(7)
    names = [kind.name for kind in KINDS]
    found = [(f"scene-{n}", scene(n, rng.sample(names, rng.randint(1, 4)))) for n in range(6)]
    noise = bytes(rng.randrange(256) for _ in range(160 * 120 * 3))
    found.append(("noise", Image.frombytes("RGB", (160, 120), noise)))
    # every pixel a reference colour moved by 0-80 along one channel: ties, and both sides of MAX_DISTANCE (70)
    edge = bytes(
        channel
        for n in range(160 * 120)
        for channel in tuple(
            min(255, value + (n % 81) * (c == n % 3)) for c, value in enumerate(KINDS[n % len(KINDS)].rgb)
        )
    )
    found.append(("edges", Image.frombytes("RGB", (160, 120), edge)))
    return found


@pytest.mark.parametrize(("name", "image"), images(), ids=[name for name, _ in images()])
def test_the_arrays_give_what_the_loop_gives(name: str, image: Image.Image) -> None:
    raw = image.convert("RGB").tobytes()
    assert stand_in._nearest(raw) == loop_nearest(raw)  # exact: the same floats, not approximately


def test_every_detection_is_the_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    encodings = [encoded(image, fmt) for _, image in images() for fmt in ("PNG", "JPEG")]
    arrays = [stand_in.detect(data) for data in encodings]
    monkeypatch.setattr(stand_in, "_nearest", loop_nearest)
    loops = [stand_in.detect(data) for data in encodings]
    assert arrays == loops
    assert sum(map(len, loops)) >= 12  # names, scores and boxes compared, not empty lists
