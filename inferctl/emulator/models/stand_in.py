"""The demo's model: a deterministic colour-blob detector, so the pipeline produces varied, realistic
detections (several objects, boxes, confidences from 20 to 99) without any trained weights.

It finds connected regions close to a few reference colours and calls them objects. Confidence grows with
how close the region's colour is to the reference and how much of its box it fills, so a crisp sun scores
high and a washed-out one low: thresholds visibly matter. It is a stand-in for a model, not a model.
"""

from __future__ import annotations

import io
from collections import deque

import numpy as np
from PIL import Image

from inferctl.emulator.models.base import ModelFault, Prediction
from inferctl.samples import KINDS

ANALYSIS_SIDE = 160  # analyse a thumbnail: fast, and boxes are ratios anyway
MIN_AREA_RATIO = 0.004
MAX_DISTANCE = 70.0


CLASS_NAMES = [kind.name for kind in KINDS]


REFERENCES = np.array([kind.rgb for kind in KINDS], dtype=np.int32)
# A pixel belongs to its nearest reference colour when it is closer than MAX_DISTANCE: a squared distance (an exact
# integer) below this. Its closeness by squared distance, computed as Python computes it (the same floats).
NEAR_SQUARED = int(MAX_DISTANCE**2)
CLOSENESS = np.array([1.0 - float(squared**0.5) / MAX_DISTANCE for squared in range(NEAR_SQUARED)])


def _nearest(raw: bytes) -> tuple[list[int], list[float]]:
    """Per pixel (RGB bytes): the index of its nearest reference colour (the first on a tie) or -1 when none is
    near, and how close it is (1 on the colour, 0 at MAX_DISTANCE or with none near). Whole arrays at once: as a
    loop over pixels and colours, this was most of the demo model's time."""
    pixels = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
    squared = ((pixels[:, None, :] - REFERENCES[None, :, :]) ** 2).sum(axis=2)
    best = squared.argmin(axis=1)
    best_squared = squared[np.arange(len(pixels)), best]
    near = best_squared < NEAR_SQUARED
    nearest = np.where(near, best, -1)
    closeness = np.where(near, CLOSENESS[np.minimum(best_squared, NEAR_SQUARED - 1)], 0.0)
    return nearest.tolist(), closeness.tolist()


def detect(data: bytes, content_type: str = "") -> list[Prediction]:
    """Predictions with scores 0-1 and corners 0-1; a request that is not an image is refused (``rejected``)."""
    try:
        opened = Image.open(io.BytesIO(data))
        opened.draft("RGB", (ANALYSIS_SIDE * 2, ANALYSIS_SIDE * 2))
        image = opened.convert("RGB")
    except Exception as exc:  # noqa: BLE001 - any decoding failure means the request was bad
        raise ModelFault("rejected", f"cannot decode image: {exc}") from None
    image.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE))
    width, height = image.size
    nearest, closeness = _nearest(image.tobytes())

    seen = [False] * len(nearest)
    found: list[Prediction] = []
    for start, kind_index in enumerate(nearest):
        if kind_index < 0 or seen[start]:
            continue
        region = _flood(start, kind_index, nearest, seen, width, height)
        if len(region) < MIN_AREA_RATIO * width * height:
            continue
        xs = [i % width for i in region]
        ys = [i // width for i in region]
        x0, x1, y0, y1 = min(xs), max(xs) + 1, min(ys), max(ys) + 1
        fill = len(region) / ((x1 - x0) * (y1 - y0))
        purity = sum(closeness[i] for i in region) / len(region)
        score = max(0.05, min(0.99, 0.15 + 0.55 * purity + 0.35 * fill))
        corners = (x0 / width, y0 / height, x1 / width, y1 / height)
        found.append(Prediction(kind_index, KINDS[kind_index].name, round(score, 4), corners))
    found.sort(key=lambda prediction: -prediction.score)
    return found


def _flood(start: int, kind: int, nearest: list[int], seen: list[bool], width: int, height: int) -> list[int]:
    region: list[int] = []
    queue = deque([start])
    seen[start] = True
    while queue:
        index = queue.popleft()
        region.append(index)
        x, y = index % width, index // width
        for nx, ny in ((x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)):
            if 0 <= nx < width and 0 <= ny < height:
                neighbour = ny * width + nx
                if not seen[neighbour] and nearest[neighbour] == kind:
                    seen[neighbour] = True
                    queue.append(neighbour)
    return region


def detect_noisy(data: bytes, content_type: str = "") -> list[Prediction]:
    """The same detector made worse, as a second demo model (the challenger): each detection's score drops to
    80 %, one in four is missed, and boxes shift by up to 8 % of the image. Deterministic per image."""
    import hashlib

    digest = hashlib.sha256(data).digest()
    noisy: list[Prediction] = []
    for index, prediction in enumerate(detect(data, content_type)):
        draw = digest[index % len(digest)]
        if draw % 4 == 0:
            continue
        corners = prediction.corners
        if corners is not None:
            shift = ((draw % 17) - 8) / 100
            corners = (
                min(1.0, max(0.0, corners[0] + shift)),
                min(1.0, max(0.0, corners[1] + shift)),
                min(1.0, max(0.0, corners[2] + shift)),
                min(1.0, max(0.0, corners[3] + shift)),
            )
        noisy.append(Prediction(prediction.class_index, prediction.name, prediction.score * 0.8, corners))
    return noisy
