"""Stored results (their labels and candidates) against ground truth, per label: the curve, the recommended
threshold, and where the current threshold stands. No model call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from inferctl.evaluation import orientation
from inferctl.evaluation.groundtruth import Box, GroundTruth, ImageTruth
from inferctl.evaluation.matching import DEFAULT_IOU, Scored, match_boxes
from inferctl.evaluation.metrics import Point, at, curve, recommend, settable
from lambdas.contract.thresholds import Thresholds


@dataclass
class LabelResult:
    label: str
    positives: int
    points: list[Point]
    recommended: Point | None  # at the threshold to write (``metrics.settable``): applied, it gives these counts
    current: Point

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "ground_truth": self.positives,
            "recommended": self.recommended.as_dict() if self.recommended else None,
            "current": self.current.as_dict(),
            "curve": [point.as_dict() for point in self.points],
        }


# A recommended threshold from fewer positives than this is shown with its evidence and not applied without
# --force: with 9 positives one miss moves recall by 11 points, and a threshold between two of them is a guess.
MIN_POSITIVES = 10


@dataclass
class Evaluation:
    kind: str
    iou: float
    floor: float
    labels: list[LabelResult]
    evaluated: list[str]
    not_evaluated: dict[str, str] = field(default_factory=dict)  # key -> why (no result, error document)
    warnings: list[str] = field(default_factory=list)  # ground truth and results that may not say what was meant

    def recommendations(self, min_positives: int = 0) -> dict[str, float]:
        """The per-label thresholds to write, exactly (no rounding: see ``metrics.settable``); with
        ``min_positives``, only for labels whose ground truth holds at least that many."""
        return {
            r.label: r.recommended.threshold
            for r in self.labels
            if r.recommended is not None and r.positives >= min_positives
        }

    def thin(self, min_positives: int = MIN_POSITIVES) -> list[str]:
        """Labels with a recommendation that rests on fewer than ``min_positives`` positives."""
        return [r.label for r in self.labels if r.recommended is not None and r.positives < min_positives]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "iou": self.iou,
            "candidate_floor": self.floor,
            "images_evaluated": len(self.evaluated),
            "not_evaluated": self.not_evaluated,
            "labels": [result.as_dict() for result in self.labels],
            "recommended_thresholds": self.recommendations(),
            "warnings": self.warnings,
        }


def pool(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Everything a result says it saw: accepted labels and candidates."""
    return [*document.get("labels", []), *document.get("candidates", [])]


def _box(label: Mapping[str, Any]) -> Box | None:
    box = label.get("bounding_box")
    return (box["left"], box["top"], box["width"], box["height"]) if box else None


def in_results_frame(image: ImageTruth, document: Mapping[str, Any]) -> ImageTruth:
    """The truth's boxes in the frame of the result's: turned upright like the image the model saw, when the
    function applied an EXIF orientation. A manifest whose ``image_size`` is already the upright size of a quarter-
    turned image (a labelling tool that showed it upright) is taken as upright."""
    facts = document.get("image") or {}
    turn = orientation.applied(facts.get("transformations") or [])
    if turn == 1 or not image.boxes:
        return image
    stored = (facts.get("width"), facts.get("height"))
    if (
        orientation.swaps_sides(turn)
        and image.size is not None
        and stored[0] != stored[1]
        and image.size == (stored[1], stored[0])
    ):
        return image
    return replace(image, boxes=[(name, orientation.to_upright(box, turn)) for name, box in image.boxes])


def score_image(
    key: str, found: list[dict[str, Any]], image: ImageTruth, kind: str, iou: float = DEFAULT_IOU
) -> tuple[dict[str, list[Scored]], dict[str, int]]:
    """One image, per label (predicted or true there): its predictions judged against the truth (a detector's
    boxes matched by IoU; a classifier's best confidence for the label), and how many true objects it has."""
    scored: dict[str, list[Scored]] = {}
    positives: dict[str, int] = {}
    for name in {label["name"] for label in found} | {name for name, _ in image.boxes} | image.classes:
        mine = [(float(label["confidence"]), _box(label)) for label in found if label["name"] == name]
        if kind == "detection":
            truths = [box for label, box in image.boxes if label == name]
            scored[name] = match_boxes(key, mine, truths, iou)
            positives[name] = len(truths)
        else:
            positive = name in image.classes
            positives[name] = int(positive)
            scored[name] = [Scored(max(c for c, _ in mine), positive, key)] if mine else []
    return scored, positives


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
        here, true_here = score_image(key, predictions_of(document), in_results_frame(image, document), truth.kind, iou)
        for name, items in here.items():
            scored.setdefault(name, []).extend(items)
            positives[name] = positives.get(name, 0) + true_here[name]
    floor = max(floors, default=0.0)
    results = []
    for name in sorted(set(scored) | set(positives)):
        items, found_here = scored.get(name, []), positives.get(name, 0)
        points = curve(items, found_here, floor)
        current = at(items, found_here, thresholds.threshold_for(name))
        chosen = recommend(points, min_precision)
        recommended = None
        if chosen is not None:
            below = max((item.confidence for item in items if item.confidence < chosen.threshold), default=None)
            recommended = at(items, found_here, settable(chosen.threshold, below, floor))
        results.append(LabelResult(name, found_here, points, recommended, current))
    predicted = {name for name in scored if not positives.get(name)}
    return Evaluation(
        truth.kind,
        iou,
        floor,
        results,
        evaluated,
        skipped,
        [*truth.warnings, *case_mismatches(truth.labels, predicted)],
    )


def case_mismatches(truth: set[str], predicted: set[str]) -> list[str]:
    """Label names that differ only in letter case ("Dog" in the ground truth, "dog" from the model) are two
    labels to the evaluation (and to the function's per-label thresholds): say so."""
    by_folded: dict[str, list[str]] = {}
    for name in truth:
        by_folded.setdefault(name.casefold(), []).append(name)
    found = []
    for name in sorted(predicted):
        for other in by_folded.get(name.casefold(), []):
            if other != name:
                found.append(
                    f"the ground truth says {other!r} and the model {name!r}: scored as two labels; rename one "
                    "(the class-map, or the folder) so that they match exactly"
                )
    return found


def none_evaluated(
    truth: GroundTruth, documents: Sequence[Mapping[str, Any]], bucket: str, not_evaluated: dict[str, str]
) -> str:
    """Why no ground-truth image could be scored, and what to do."""
    if not truth.images:
        return "the ground truth names no image"
    errors = sum(1 for why in not_evaluated.values() if why.startswith("error document"))
    if errors == len(truth.images):
        return f"all {errors} ground-truth images have error documents: `inferctl results` shows why"
    example = next(iter(sorted(truth.images)))
    keys = sorted(str(d["source"]["key"]) for d in documents if isinstance(d.get("source"), dict))
    if not keys:
        return f"this stack has no results yet: upload the images (inferctl upload), e.g. one for {example!r}"
    where = ""
    other = sorted(truth.buckets - {bucket})
    if other:
        where = f"; its source-refs name {', '.join(other[:3])}, and this stack's bucket is {bucket}"
    return (
        f"none of its {len(truth.images)} images has a result here: it names keys like {example!r}, the results "
        f"are for keys like {keys[0]!r}{where}. Keys match without the bucket: upload the images under the keys "
        "the ground truth names (inferctl upload), or make the source-refs name the uploaded keys"
    )
