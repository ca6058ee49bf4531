"""Confidence thresholds, applied in the Lambda for every backend.

The boundary is inclusive: a label whose confidence equals its threshold is accepted. A per-label
override replaces the global minimum for that label name (exact, case-sensitive match). Labels below their
threshold but at or above the candidate floor are kept as candidates, so that other thresholds can be tried
on stored results without calling the model again (``inferctl thresholds what-if``, ``inferctl evaluate``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from lambdas.contract.values import Label

NEAR_POINTS = 10.0  # confidence points below a threshold that count as "near" it


class Thresholds(NamedTuple):
    min_confidence: float
    per_label: Mapping[str, float] = {}
    candidate_floor: float = 100.0  # nothing below the threshold is kept unless a floor is set

    def threshold_for(self, name: str) -> float:
        return self.per_label.get(name, self.min_confidence)

    def accepts(self, label: Label) -> bool:
        return label.confidence >= self.threshold_for(label.name)

    def lowest(self) -> float:
        """The smallest confidence worth asking a model for: the lowest threshold in force, or the candidate
        floor when that is lower. Anything below it is neither accepted nor kept."""
        return min([self.min_confidence, *self.per_label.values(), self.candidate_floor])

    def split(self, labels: Iterable[Label]) -> tuple[list[Label], list[Label], int]:
        """(accepted, candidates, how many were below both), the lists sorted by confidence, highest first."""
        ordered = sorted(labels, key=lambda label: (-label.confidence, label.name))
        accepted = [label for label in ordered if self.accepts(label)]
        below = [label for label in ordered if not self.accepts(label)]
        candidates = [label for label in below if label.confidence >= self.candidate_floor]
        return accepted, candidates, len(below) - len(candidates)

    def near_below(self, candidates: Iterable[Label], within: float = NEAR_POINTS) -> list[str]:
        """The labels with a candidate less than ``within`` points below its threshold: where a small change of
        threshold, or of the model, changes what is accepted (a drift signal, and what a review round looks at)."""
        return sorted(
            {label.name for label in candidates if label.confidence >= self.threshold_for(label.name) - within}
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "min_confidence": self.min_confidence,
            "label_overrides": dict(sorted(self.per_label.items())),
            "candidate_floor": self.candidate_floor,
            "inclusive": True,
        }
