"""Every model found in the results, side by side on the same ground truth: the primary (the result's labels
and candidates) and a challenger in shadow (its ``challenger`` section). Both are scored on the images both
answered, so that neither is judged on images the other never saw: precision, recall and F1 at the thresholds
in force and at each model's recommended thresholds, per label and overall, where they disagree, their
latency percentiles and what each costs per 1,000 images."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from inferctl import pricing
from inferctl.console import number
from inferctl.evaluation.evaluate import MIN_POSITIVES, Evaluation, evaluate, pool
from inferctl.evaluation.groundtruth import GroundTruth
from inferctl.evaluation.matching import DEFAULT_IOU
from inferctl.evaluation.metrics import Point
from lambdas.contract.thresholds import Thresholds


@dataclass
class ModelView:
    role: str  # "primary" or "challenger"
    backend: str
    model_id: str
    evaluation: Evaluation
    latencies_ms: list[float]

    def overall(self, which: str) -> Point:
        """TP/FP/FN summed over labels, at the current thresholds or at the recommended ones."""
        points = [
            result.current if which == "current" else (result.recommended or result.current)
            for result in self.evaluation.labels
        ]
        return Point(
            threshold=0.0,
            tp=sum(p.tp for p in points),
            fp=sum(p.fp for p in points),
            fn=sum(p.fn for p in points),
        )

    def latency(self, quantile: float) -> float | None:
        if not self.latencies_ms:
            return None
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        cuts = statistics.quantiles(self.latencies_ms, n=100, method="inclusive")
        return cuts[int(quantile) - 1]

    def cost_per_thousand(self) -> float:
        """The model's list price per 1,000 images at 1,000 images a day, always on: one Rekognition inference
        unit, or one ml.m5.xlarge SageMaker instance (``inferctl/pricing.py``)."""
        if self.backend == "rekognition":
            return pricing.per_thousand(24 * pricing.PRICES.rekognition_unit_hour, 1000)
        return pricing.per_thousand(pricing.sagemaker_realtime_per_day("ml.m5.xlarge", 1), 1000)


@dataclass
class Comparison:
    models: list[ModelView]
    images: int
    agreed: int
    disagreements: list[dict[str, Any]] = field(default_factory=list)  # key, primary, challenger label names

    @property
    def agreement(self) -> float:
        return self.agreed / self.images if self.images else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "agreement": round(self.agreement, 4),
            "disagreements": self.disagreements,
            "models": [
                {
                    "role": view.role,
                    "backend": view.backend,
                    "model_id": view.model_id,
                    "current": _point(view.overall("current")),
                    "recommended": _point(view.overall("recommended")),
                    "recommended_thresholds": view.evaluation.recommendations(),
                    "latency_ms": {f"p{q}": view.latency(q) for q in (50, 90, 99)},
                    "cost_per_1000_images_usd": round(view.cost_per_thousand(), 2),
                    "labels": [result.as_dict() for result in view.evaluation.labels],
                }
                for view in self.models
            ],
        }


def _point(point: Point) -> dict[str, Any]:
    return {
        "precision": point.precision,
        "recall": point.recall,
        "f1": point.f1,
        "tp": point.tp,
        "fp": point.fp,
        "fn": point.fn,
    }


def challenger_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """The challenger's section as a result document of its own (what ``evaluate`` scores)."""
    section = document.get("challenger") or {}
    return {
        "source": document["source"],
        "status": section.get("status"),
        "labels": section.get("labels", []),
        "candidates": section.get("candidates", []),
        "thresholds": document.get("thresholds"),
        "error": section.get("error"),
    }


def compare(
    documents: Iterable[Mapping[str, Any]],
    truth: GroundTruth,
    thresholds: Thresholds,
    *,
    iou: float = DEFAULT_IOU,
    min_precision: float | None = None,
) -> Comparison | None:
    """None when no result has a challenger's answer."""
    both = [
        document
        for document in documents
        if document.get("status") == "ok" and (document.get("challenger") or {}).get("status") == "ok"
    ]
    if not both:
        return None
    keys = set(truth.images)
    both = [document for document in both if str(document["source"]["key"]) in keys]
    if not both:
        return None
    primary_eval = evaluate(both, truth, thresholds, iou=iou, min_precision=min_precision)
    challengers = [challenger_view(document) for document in both]
    challenger_eval = evaluate(
        challengers, truth, thresholds, iou=iou, min_precision=min_precision, predictions_of=pool
    )
    first = both[0]
    views = [
        ModelView(
            "primary",
            str(first["model"]["backend"]),
            str(first["model"]["model_id"]),
            primary_eval,
            [
                float(d["timing"]["backend_latency_ms"])
                for d in both
                if d["timing"].get("backend_latency_ms") is not None
            ],
        ),
        ModelView(
            "challenger",
            str(first["challenger"]["backend"]),
            str(first["challenger"]["model_id"]),
            challenger_eval,
            [float(d["challenger"]["latency_ms"]) for d in both if d["challenger"].get("latency_ms") is not None],
        ),
    ]
    agreed = 0
    disagreements = []
    for document in both:
        mine = sorted({label["name"] for label in document.get("labels", [])})
        theirs = sorted({label["name"] for label in document["challenger"].get("labels", [])})
        if mine == theirs:
            agreed += 1
        else:
            disagreements.append({"key": document["source"]["key"], "primary": mine, "challenger": theirs})
    return Comparison(views, len(both), agreed, disagreements)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


MODEL_HEADERS = (
    "model",
    "P / R / F1 (current)",
    "P / R / F1 (recommended)",
    "latency p50/p90 ms",
    "USD / 1,000 images",
)


def model_rows(comparison: Comparison) -> list[tuple[str, ...]]:
    """One line per model, like the blog's comparison."""
    rows: list[tuple[str, ...]] = []
    for view in comparison.models:
        now, best = view.overall("current"), view.overall("recommended")
        rows.append(
            (
                f"{view.role}: {view.backend} {view.model_id[-40:]}",
                f"{_pct(now.precision)} / {_pct(now.recall)} / {_pct(now.f1)}",
                f"{_pct(best.precision)} / {_pct(best.recall)} / {_pct(best.f1)}",
                f"{_ms(view.latency(50))} / {_ms(view.latency(90))}",
                f"{view.cost_per_thousand():.2f}",
            )
        )
    return rows


LABEL_HEADERS = ("label", "truth", "primary: P / R / F1 @ threshold", "challenger: P / R / F1 @ threshold")


def label_rows(comparison: Comparison) -> list[tuple[str, ...]]:
    primary, challenger = comparison.models
    theirs = {result.label: result for result in challenger.evaluation.labels}
    rows: list[tuple[str, ...]] = []
    for result in primary.evaluation.labels:
        other = theirs.get(result.label)

        def best(point: Point | None) -> str:
            if point is None:
                return "none"
            return f"{_pct(point.precision)} / {_pct(point.recall)} / {_pct(point.f1)} @ {number(point.threshold)}"

        rows.append(
            (result.label, str(result.positives), best(result.recommended), best(other.recommended if other else None))
        )
    return rows


FEW_IMAGES = 30  # below this many shared images, a difference in F1 is mostly chance


def advice(comparison: Comparison) -> str:
    """What the comparison supports, with the metric and the counts it rests on: promote only when the
    challenger scores a better F1 (each model at its own recommended thresholds, on the same images)."""
    primary, challenger = comparison.models
    mine, theirs = primary.overall("recommended"), challenger.overall("recommended")

    def said(point: Point) -> str:
        return f"F1 {_pct(point.f1)} (TP {point.tp}, FP {point.fp}, FN {point.fn})"

    positives = mine.tp + mine.fn  # the ground truth's objects: the same for both models
    basis = (
        f"on the {comparison.images} images both answered ({positives} positives), each at its recommended "
        f"thresholds: challenger {said(theirs)}, primary {said(mine)}"
    )
    few = [f"only {comparison.images} images"] if comparison.images < FEW_IMAGES else []
    few += [f"only {positives} positives"] if positives < MIN_POSITIVES else []
    caution = f"; {' and '.join(few)}: label more before deciding" if few else ""
    if theirs.f1 is None or mine.f1 is None:
        return f"no advice: F1 is undefined for a model that found nothing {basis}"
    if theirs.f1 > mine.f1:
        return f"the challenger scores better {basis}{caution}. Promote it: inferctl challenger promote --dry-run"
    if theirs.f1 < mine.f1:
        return f"keep the primary: it scores better {basis}{caution}. Retire the challenger: inferctl challenger retire"
    return f"no difference in F1 {basis}{caution}"
