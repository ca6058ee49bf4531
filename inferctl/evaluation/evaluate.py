"""Stored results (their labels and candidates) against ground truth, per label: the curve, the recommended
threshold, and where the current threshold stands. No model call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from inferctl.evaluation.groundtruth import Box, GroundTruth
from inferctl.evaluation.matching import DEFAULT_IOU, Scored, match_boxes
from inferctl.evaluation.metrics import Point, at, curve, recommend
from lambdas.inference.core.thresholds import Thresholds


@dataclass
class LabelResult:
    label: str
    positives: int
    points: list[Point]
    recommended: Point | None
    current: Point

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "ground_truth": self.positives,
            "recommended": self.recommended.as_dict() if self.recommended else None,
            "current": self.current.as_dict(),
            "curve": [point.as_dict() for point in self.points],
        }


@dataclass
class Evaluation:
    kind: str
    iou: float
    floor: float
    labels: list[LabelResult]
    evaluated: list[str]
    not_evaluated: dict[str, str] = field(default_factory=dict)  # key -> why (no result, error document)

    def recommendations(self) -> dict[str, float]:
        return {r.label: round(r.recommended.threshold, 2) for r in self.labels if r.recommended is not None}

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "iou": self.iou,
            "candidate_floor": self.floor,
            "images_evaluated": len(self.evaluated),
            "not_evaluated": self.not_evaluated,
            "labels": [result.as_dict() for result in self.labels],
            "recommended_thresholds": self.recommendations(),
        }


def pool(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Everything a result says it saw: accepted labels and candidates."""
    return [*document.get("labels", []), *document.get("candidates", [])]


def _box(label: Mapping[str, Any]) -> Box | None:
    box = label.get("bounding_box")
    return (box["left"], box["top"], box["width"], box["height"]) if box else None


def evaluate(
    documents: Iterable[Mapping[str, Any]],
    truth: GroundTruth,
    thresholds: Thresholds,
    *,
    iou: float = DEFAULT_IOU,
    min_precision: float | None = None,
    predictions_of: Any = pool,
) -> Evaluation:
    """``predictions_of(document)`` picks which model's findings to score (the primary's by default)."""
    by_key = {str(d["source"]["key"]): d for d in documents if isinstance(d.get("source"), dict)}
    scored: dict[str, list[Scored]] = {}
    positives: dict[str, int] = {}
    evaluated: list[str] = []
    skipped: dict[str, str] = {}
    floors = []
    for key, image in sorted(truth.images.items()):
        document = by_key.get(key)
        if document is None:
            skipped[key] = "no result"
            continue
        if document.get("status") != "ok":
            skipped[key] = f"error document: {(document.get('error') or {}).get('code')}"
            continue
        evaluated.append(key)
        floors.append(float((document.get("thresholds") or {}).get("candidate_floor", 0.0)))
        found = predictions_of(document)
        names = {label["name"] for label in found} | {name for name, _ in image.boxes} | image.classes
        for name in names:
            mine = [(float(label["confidence"]), _box(label)) for label in found if label["name"] == name]
            if truth.kind == "detection":
                truths = [box for label, box in image.boxes if label == name]
                scored.setdefault(name, []).extend(match_boxes(key, mine, truths, iou))
                positives[name] = positives.get(name, 0) + len(truths)
            else:
                positive = name in image.classes
                positives[name] = positives.get(name, 0) + int(positive)
                if mine:
                    scored.setdefault(name, []).append(Scored(max(c for c, _ in mine), positive, key))
    floor = max(floors, default=0.0)
    results = []
    for name in sorted(set(scored) | set(positives)):
        items = scored.get(name, [])
        points = curve(items, positives.get(name, 0), floor)
        current = at(items, positives.get(name, 0), thresholds.threshold_for(name))
        results.append(LabelResult(name, positives.get(name, 0), points, recommend(points, min_precision), current))
    return Evaluation(truth.kind, iou, floor, results, evaluated, skipped)
