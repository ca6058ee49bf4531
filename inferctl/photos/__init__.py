"""Real photographs with hand-checked ground truth (``README.md`` beside this file: where each comes from and its
licence), for the embedded stack's real detector (``inferctl/emulator/models/cascade.py``): what ``make demo``
uploads, evaluates and reviews by default."""

from __future__ import annotations

import io
from collections.abc import Iterator
from importlib import resources

from PIL import Image

from inferctl.samples import PixelBox, Sample

PREFIX = "photos/"

# Per photo: what a person sees, as (label, (left, top, width, height)) in the stored pixels.
TRUTH: dict[str, tuple[tuple[str, PixelBox], ...]] = {
    "astronaut.jpg": (("face", (178, 68, 94, 97)), ("eye", (186, 86, 32, 26)), ("eye", (232, 88, 28, 24))),
    "grace_hopper.jpg": (("face", (160, 140, 200, 170)), ("eye", (205, 178, 36, 28)), ("eye", (285, 176, 34, 28))),
    "camera.jpg": (("face", (177, 105, 80, 90)),),  # in profile
    "chelsea.jpg": (("cat face", (50, 0, 380, 300)),),  # larger than the frame: ears and chin cut off
    "coffee.jpg": (),
    "rocket.jpg": (),
}


def photo_samples() -> Iterator[Sample]:
    """The photographs as the demo uploads them (under ``photos/``), with their ground truth and size."""
    folder = resources.files(__package__)
    for name, objects in TRUTH.items():
        data = folder.joinpath(name).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            size = image.size
        yield Sample(key=PREFIX + name, data=data, objects=objects, size=size)
