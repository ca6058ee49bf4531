"""Sample images for the demo and the smoke test, drawn at run time (nothing binary is shipped, nothing to
license).

Deterministic scenes of simple objects in colours the demo model knows, with jittered colours and
partly faded objects so that confidences vary. One file is text with a ``.jpg`` suffix, to show an
error document.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image, ImageDraw

SIZE = (640, 480)
SKY = (190, 215, 240)
GRASS = (150, 200, 120)


@dataclass(frozen=True)
class Kind:
    name: str
    rgb: tuple[int, int, int]


KINDS = (
    Kind("sun", (250, 205, 40)),
    Kind("tree", (40, 140, 55)),
    Kind("car", (205, 35, 40)),
    Kind("ball", (245, 130, 25)),
    Kind("house", (135, 85, 50)),
    Kind("flower", (215, 60, 175)),
    Kind("lake", (35, 70, 170)),
)

# The objects a scene can hold, in the colours the demo model looks for (``emulator/models/stand_in.py``).
COLOURS = {kind.name: kind.rgb for kind in KINDS}


PixelBox = tuple[int, int, int, int]  # left, top, width, height in pixels


@dataclass(frozen=True)
class Sample:
    key: str  # relative to the input prefix
    data: bytes
    objects: tuple[tuple[str, PixelBox], ...] = ()  # what was drawn where: the scene's ground truth
    size: tuple[int, int] = SIZE


def _jitter(rgb: tuple[int, int, int], rng: random.Random, amount: int) -> tuple[int, int, int]:
    r, g, b = (max(0, min(255, c + rng.randint(-amount, amount))) for c in rgb)
    return (r, g, b)


def _fade(rgb: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    """Wash a colour out towards grey: the demo model is less sure of faded objects."""
    r, g, b = (round(c * (1 - amount) + 170 * amount) for c in rgb)
    return (r, g, b)


def _box(x0: int, y0: int, x1: int, y1: int) -> PixelBox:
    left, top = max(0, min(x0, x1)), max(0, min(y0, y1))
    right, bottom = min(SIZE[0], max(x0, x1)), min(SIZE[1], max(y0, y1))
    return (left, top, right - left, bottom - top)


def scene(seed: int, objects: list[str], drawn: list[tuple[str, PixelBox]] | None = None) -> Image.Image:
    """A scene of ``objects``; each one drawn is added to ``drawn`` with its box (the ground truth)."""
    drawn = drawn if drawn is not None else []
    rng = random.Random(seed)  # noqa: S311 - reproducible pictures, not secrets
    image = Image.new("RGB", SIZE, SKY)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 300, SIZE[0], SIZE[1]), fill=GRASS)
    for name in objects:
        colour = _fade(_jitter(COLOURS[name], rng, rng.choice([5, 15, 30])), rng.choice([0.0, 0.0, 0.25, 0.4]))
        x, y = rng.randint(20, 520), rng.randint(20, 330)
        if name == "sun":
            r = rng.randint(30, 55)
            draw.ellipse((x, 20, x + 2 * r, 20 + 2 * r), fill=colour)
            drawn.append((name, _box(x, 20, x + 2 * r, 20 + 2 * r)))
        elif name == "tree":
            w, h = rng.randint(50, 90), rng.randint(90, 150)
            base = rng.randint(330, 440)
            draw.polygon([(x, base), (x + w, base), (x + w // 2, base - h)], fill=colour)
            drawn.append((name, _box(x, base - h, x + w, base)))
        elif name in ("car", "house"):
            w, h = (rng.randint(90, 140), rng.randint(40, 60)) if name == "car" else (rng.randint(90, 130),) * 2
            top = rng.randint(300, 400) if name == "car" else rng.randint(200, 300)
            draw.rectangle((x, top, x + w, top + h), fill=colour)
            drawn.append((name, _box(x, top, x + w, top + h)))
        elif name == "ball":
            r = rng.randint(12, 28)
            draw.ellipse((x, y, x + 2 * r, y + 2 * r), fill=colour)
            drawn.append((name, _box(x, y, x + 2 * r, y + 2 * r)))
        elif name == "flower":
            for _ in range(rng.randint(2, 4)):
                fx, fy, r = rng.randint(10, 600), rng.randint(320, 450), rng.randint(8, 14)
                draw.ellipse((fx, fy, fx + 2 * r, fy + 2 * r), fill=colour)
                drawn.append((name, _box(fx, fy, fx + 2 * r, fy + 2 * r)))
        elif name == "lake":
            right, bottom = x + rng.randint(160, 260), 330 + rng.randint(50, 90)
            draw.ellipse((x, 330, right, bottom), fill=colour)
            drawn.append((name, _box(x, 330, right, bottom)))
    return Image.blend(image, _noise(rng, rng.choice([10, 25, 40])), 0.08)


def _noise(rng: random.Random, sigma: int) -> Image.Image:
    """Grey noise around 128 with about ``sigma`` spread, from ``rng`` (``Image.effect_noise`` draws from the C
    library's generator, which no seed reaches: the same scene came out different on every call)."""
    uniform = Image.frombytes("L", SIZE, rng.randbytes(SIZE[0] * SIZE[1]))
    scale = sigma / 74.0  # a uniform byte's standard deviation is about 74
    return uniform.point(lambda v: max(0, min(255, round(128 + (v - 128) * scale)))).convert("RGB")


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buffer.getvalue()


SCENES: list[tuple[str, str, list[str]]] = [
    ("sunny meadow.jpg", "JPEG", ["sun", "tree", "tree", "flower"]),
    ("parking/lot 42.jpg", "JPEG", ["car", "car", "tree", "sun"]),
    ("garden party.png", "PNG", ["house", "ball", "flower", "tree"]),
    ("lakeside/cabin.webp", "WEBP", ["lake", "house", "tree", "sun"]),
    ("Straße/fahrrad und Äpfel.JPG", "JPEG", ["car", "ball", "house"]),
    ("playground+park.jpeg", "JPEG", ["ball", "ball", "tree", "sun"]),
    ("100% sunshine.jpg", "JPEG", ["sun"]),
]


def demo_samples() -> Iterator[Sample]:
    """The demo's images, each a few tens of kilobytes."""
    for seed, (key, fmt, objects) in enumerate(SCENES):
        drawn: list[tuple[str, PixelBox]] = []
        image = scene(seed, objects, drawn)
        yield Sample(key=key, data=_encode(image, fmt), objects=tuple(drawn))
    yield Sample(key="broken/not-really-a-photo.jpg", data=b"This is a text file with an image suffix.\n")
