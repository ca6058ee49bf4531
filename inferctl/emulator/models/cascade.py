"""A real pretrained detector for the embedded stack: OpenCV's Haar cascades, the trained classifiers its wheel
ships (``cv2.data``: Viola-Jones detectors trained on thousands of photographs). Nothing is downloaded: the
weights are in the pinned ``opencv-python-headless`` wheel (4.x; OpenCV 5 no longer ships them).

It finds frontal faces, eyes (inside a face), frontal cat faces, whole standing people and number plates, and it
is honest about what it is: a 2001-era detector. It misses faces in profile and close-ups larger than the frame,
and finds the odd face in a texture; the evaluation on real photographs (``inferctl/photos``) says how often.

A cascade gives no probability; how many overlapping windows agreed on a box does (``detectMultiScale2``'s
``numDetections``). The score is ``1 - exp(-n / 12)``: a face found by 45 windows scores 0.98, one found by the
minimum of 3 windows 0.22 (below any sensible threshold). Served behind the SageMaker object-detection contract
and the Rekognition emulation like any local model (``LocalModel``), so both backends give the same labels.
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass
from typing import Any

from PIL import Image

from inferctl.emulator.models.base import ModelFault, Prediction

ANALYSIS_SIDE = 1024  # images are looked at no larger than this: faces of 24 px and more in a 1024 px photo
MIN_NEIGHBOURS = 3
SCALE_STEP = 1.1
AGREEMENT = 12.0  # windows: the score is 1 - exp(-windows / AGREEMENT)


@dataclass(frozen=True)
class Cascade:
    name: str
    file: str  # in cv2.data.haarcascades
    min_side: int  # pixels, in the analysed image
    inside: str | None = None  # looked for only inside boxes of this class (eyes in faces)


CASCADES = (
    Cascade("face", "haarcascade_frontalface_default.xml", 24),
    Cascade("eye", "haarcascade_eye.xml", 12, inside="face"),
    Cascade("cat face", "haarcascade_frontalcatface.xml", 24),
    Cascade("person", "haarcascade_fullbody.xml", 48),
    Cascade("number plate", "haarcascade_russian_plate_number.xml", 24),
)
CLASS_NAMES = [cascade.name for cascade in CASCADES]

# One set of classifiers per thread: a CascadeClassifier keeps per-call state, and the emulated services answer
# a batch's requests concurrently (shared, they gave a photo different boxes from one request to the next).
_local = threading.local()


def _classifier(cascade: Cascade) -> Any:
    import cv2

    loaded: dict[str, Any] = getattr(_local, "loaded", None) or {}
    _local.loaded = loaded
    if cascade.file not in loaded:
        classifier = cv2.CascadeClassifier(cv2.data.haarcascades + cascade.file)  # type: ignore[attr-defined]
        if classifier.empty():
            raise RuntimeError(f"OpenCV's wheel lacks {cascade.file}: pin opencv-python-headless 4.x")
        loaded[cascade.file] = classifier
    return loaded[cascade.file]


def score(windows: int) -> float:
    return round(1.0 - math.exp(-windows / AGREEMENT), 4)


def detect(data: bytes, content_type: str = "") -> list[Prediction]:
    """Predictions with scores 0-1 and corners 0-1 of the image as stored; a request that is not an image is
    refused (``rejected``), as the services refuse one."""
    import cv2
    import numpy as np

    try:
        opened = Image.open(io.BytesIO(data))
        opened.draft("L", (ANALYSIS_SIDE, ANALYSIS_SIDE))
        image = _flattened(opened).convert("L")
    except Exception as exc:  # noqa: BLE001 - any decoding failure means the request was bad
        raise ModelFault("rejected", f"cannot decode image: {exc}") from None
    image.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE))
    width, height = image.size
    gray = cv2.equalizeHist(np.asarray(image, dtype=np.uint8))
    found: dict[str, list[tuple[int, int, int, int, float]]] = {}
    for cascade in CASCADES:
        regions = [(0, 0, width, height)]
        if cascade.inside is not None:
            regions = [(x, y, w, h // 2 + h // 8) for x, y, w, h, _ in found.get(cascade.inside, [])]
        for left, top, region_width, region_height in regions:
            area = gray[top : top + region_height, left : left + region_width]
            if min(area.shape[:2]) < cascade.min_side:
                continue
            boxes, windows = _classifier(cascade).detectMultiScale2(
                area,
                scaleFactor=SCALE_STEP,
                minNeighbors=MIN_NEIGHBOURS,
                minSize=(cascade.min_side, cascade.min_side),
            )
            for (x, y, w, h), count in zip(boxes, windows, strict=True):
                found.setdefault(cascade.name, []).append(
                    (left + int(x), top + int(y), int(w), int(h), score(int(count)))
                )
    predictions = [
        Prediction(
            CLASS_NAMES.index(name),
            name,
            confidence,
            (x / width, y / height, min(1.0, (x + w) / width), min(1.0, (y + h) / height)),
        )
        for name, boxes in found.items()
        for x, y, w, h, confidence in boxes
    ]
    return sorted(predictions, key=lambda p: (-p.score, p.class_index, p.corners))


def _flattened(image: Image.Image) -> Image.Image:
    """Transparent pixels on white, as a person sees them in a viewer (and whatever bytes a backend is sent)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image
