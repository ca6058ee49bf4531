"""Predictions matched to ground truth, per label.

Boxes match when their intersection over union is at least ``iou`` (0.5, PASCAL VOC's convention; Custom
Labels does not document its own), greedily by confidence: the most confident prediction takes the best
unmatched ground-truth box. A prediction is then a true positive or a false positive at every threshold at
or below its confidence, so one pass per image gives the counts for every threshold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from inferctl.evaluation.groundtruth import Box

DEFAULT_IOU = 0.5
# An overlap of exactly 0.5 in pixels (what COCO computes on the boxes as drawn) does not survive the way here:
# boxes are ratios of the image (0.4999999999999999 in floats for a 100 x 50 box in a 100 x 100 one at y=11 of
# 480), and results carry their coordinates to 6 decimals, which moves an IoU by up to about 1e-4 for boxes of
# a few pixels. A match needs IoU >= threshold - IOU_TOLERANCE: robust at 0.5, and no looser than that.
IOU_TOLERANCE = 1e-4


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (left, top, width, height) boxes; 0 for boxes without area."""
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    width = min(ax2, bx2) - max(a[0], b[0])
    height = min(ay2, by2) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    intersection = width * height
    union = a[2] * a[3] + b[2] * b[3] - intersection
    return intersection / union if union > 0 else 0.0


@dataclass(frozen=True)
class Scored:
    """A prediction, judged: its confidence (percent) and whether it matched ground truth."""

    confidence: float
    hit: bool
    key: str


def match_boxes(
    key: str, predictions: Iterable[tuple[float, Box | None]], truths: list[Box], threshold_iou: float = DEFAULT_IOU
) -> list[Scored]:
    """One image, one label: greedy by confidence, each ground-truth box matched at most once."""
    unmatched = list(range(len(truths)))
    scored = []
    for confidence, box in sorted(predictions, key=lambda item: -item[0]):
        best, best_iou = None, threshold_iou - IOU_TOLERANCE
        if box is not None:
            for index in unmatched:
                overlap = iou(box, truths[index])
                if overlap >= best_iou:
                    best, best_iou = index, overlap
        if best is not None:
            unmatched.remove(best)
        scored.append(Scored(confidence, best is not None, key))
    return scored
