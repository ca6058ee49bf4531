"""Precision, recall and F1 across thresholds, with the counts behind them, and the recommended thresholds.

Counts at a threshold ``t`` (inclusive, as the function's): TP = hits with confidence >= t, FP = misses with
confidence >= t, FN = ground truth minus TP. Precision is undefined with nothing predicted and recall with
nothing to find (None, never a made-up number). Exact at every prediction's confidence, which is where the
best F1 lies.

A recommended threshold is the one to *write*: the roundest number that accepts exactly what the chosen point
accepts (``settable``), so that applying it reproduces the promised counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from inferctl.evaluation.matching import Scored
from lambdas.contract.results import CONFIDENCE_DECIMALS

# A stored confidence c was the model's c - HALF_STEP to c + HALF_STEP (results round it; the function does not).
HALF_STEP = 0.5 * 10.0**-CONFIDENCE_DECIMALS


@dataclass(frozen=True)
class Point:
    threshold: float
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        precision, recall = self.precision, self.recall
        if precision is None or recall is None or precision + recall == 0:
            return None if precision is None or recall is None else 0.0
        return 2 * precision * recall / (precision + recall)

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "threshold": round(self.threshold, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": _round(self.precision),
            "recall": _round(self.recall),
            "f1": _round(self.f1),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def at(scored: Sequence[Scored], positives: int, threshold: float) -> Point:
    tp = sum(1 for item in scored if item.hit and item.confidence >= threshold)
    fp = sum(1 for item in scored if not item.hit and item.confidence >= threshold)
    return Point(threshold, tp, fp, positives - tp)


def curve(scored: Sequence[Scored], positives: int, floor: float = 0.0) -> list[Point]:
    """A point at every distinct prediction confidence at or above ``floor`` (and at the floor itself)."""
    thresholds = sorted({floor, *(item.confidence for item in scored if item.confidence >= floor)})
    return [at(scored, positives, threshold) for threshold in thresholds]


def recommend(points: Sequence[Point], min_precision: float | None = None) -> Point | None:
    """The best F1 (ties: the higher threshold, fewer false positives), or, with ``min_precision``, the most
    recall among the thresholds whose precision meets it (ties: the higher threshold). None when nothing
    qualifies."""
    if min_precision is not None:
        meeting = [p for p in points if p.precision is not None and p.precision >= min_precision and p.tp > 0]
        return max(meeting, key=lambda p: (p.tp, p.threshold)) if meeting else None
    scored = [p for p in points if p.f1 is not None and p.tp > 0]
    return max(scored, key=lambda p: (p.f1 or 0.0, p.threshold)) if scored else None


def settable(threshold: float, below: float | None, floor: float) -> float:
    """The threshold to write for a point at ``threshold`` (a stored confidence): the number with the fewest
    decimals that accepts every prediction at ``threshold`` and none at ``below`` (the next lower stored
    confidence), whatever the unrounded confidences behind them, and never less than ``floor`` (below it nothing
    is known). Rounded *down*, never up: rounding up drops the prediction the threshold sits on."""
    if threshold <= floor:
        return threshold
    high = threshold - HALF_STEP  # the lowest model confidence stored as ``threshold``
    low = below + HALF_STEP if below is not None else None  # the highest stored as ``below``
    if low is not None and high <= low:
        return threshold  # no room for the rounding (confidences not from our documents): exact
    for decimals in range(CONFIDENCE_DECIMALS + 2):
        value = float(Decimal(repr(high)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_FLOOR))
        if value >= floor and (low is None or value > low):
            return value
    return high
