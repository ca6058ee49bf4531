"""Confidence thresholds, applied in the Lambda for every backend.

The boundary is inclusive: a label whose confidence equals its threshold is accepted. A per-label
override replaces the global minimum for that label name (exact, case-sensitive match).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .model import Label


@dataclass(frozen=True)
class Thresholds:
    min_confidence: float
    per_label: Mapping[str, float] = field(default_factory=dict)

    def threshold_for(self, name: str) -> float:
        return self.per_label.get(name, self.min_confidence)

    def accepts(self, label: Label) -> bool:
        return label.confidence >= self.threshold_for(label.name)

    def lowest(self) -> float:
        """The smallest threshold in force: anything below it is rejected whatever its name."""
        return min([self.min_confidence, *self.per_label.values()])

    def split(self, labels: Iterable[Label]) -> tuple[list[Label], list[Label]]:
        """(accepted, rejected), each sorted by confidence, highest first."""
        ordered = sorted(labels, key=lambda label: (-label.confidence, label.name))
        accepted = [label for label in ordered if self.accepts(label)]
        rejected = [label for label in ordered if not self.accepts(label)]
        return accepted, rejected

    def as_dict(self) -> dict[str, object]:
        return {
            "min_confidence": self.min_confidence,
            "label_overrides": dict(sorted(self.per_label.items())),
            "inclusive": True,
        }
