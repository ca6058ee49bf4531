"""Did what the model says move between two windows of results? Per label: how often it is accepted, how often a
candidate sits just below its threshold, and the distribution of its confidences.

Tests, each at ``ALPHA`` (0.01: with a dozen labels and three tests each, a false alarm in about one comparison of
three, and a real shift of a few points at a few thousand images still shows):
- a share (images that accept the label; images with a candidate near its threshold): the two-proportion z-test
  (pooled), and only a change of at least ``MIN_SHIFT`` (5 percentage points) is listed, so a large window's
  tiny significant changes stay out;
- the confidences: the two-sample Kolmogorov-Smirnov statistic D against its asymptotic critical value
  c(alpha) * sqrt((n + m) / (n m)), c(0.01) = 1.628, with at least ``MIN_SAMPLES`` confidences on each side.
Pure: windows in, findings out.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from inferctl.evaluation.evaluate import pool
from lambdas.contract.results import iso
from lambdas.contract.thresholds import Thresholds
from lambdas.contract.values import Label

ALPHA = 0.01
Z_CRITICAL = 2.5758293035489004  # two-sided, ALPHA
KS_C = 1.6276236115189502  # sqrt(-ln(ALPHA / 2) / 2)
MIN_SHIFT = 0.05
MIN_SAMPLES = 20


@dataclass
class Window:
    """What a window of results said, per label."""

    images: int = 0
    accepted: dict[str, int] = field(default_factory=dict)
    near: dict[str, int] = field(default_factory=dict)
    confidences: dict[str, list[float]] = field(default_factory=dict)

    def add(self, document: Mapping[str, Any], thresholds: Thresholds) -> None:
        if document.get("status") != "ok":
            return
        self.images += 1
        for name in {label["name"] for label in document.get("labels", [])}:
            self.accepted[name] = self.accepted.get(name, 0) + 1
        for label in pool(document):
            self.confidences.setdefault(label["name"], []).append(float(label["confidence"]))
        # The function's own rule (its NearThreshold_<label> metric), on the stored candidates
        candidates = (Label(label["name"], float(label["confidence"])) for label in document.get("candidates", []))
        for name in thresholds.near_below(candidates):
            self.near[name] = self.near.get(name, 0) + 1


def bounds(split: datetime | None, days: float, now: datetime) -> tuple[str, str, str]:
    """(since, split, until) in the results' ISO form: two windows of ``days`` either side of ``split`` (by
    default the last ``days`` before ``now`` against the ``days`` before them)."""
    width = timedelta(days=days)
    middle = (split or now - width).astimezone(UTC)
    return iso(middle - width), iso(middle), iso(middle + width)


def windows(
    documents: Iterable[Mapping[str, Any]], split: str, thresholds: Thresholds, since: str = "", until: str = "~"
) -> tuple[Window, Window]:
    """(before, after) ``split`` (ISO 8601, compared with each result's ``timing.completed_at``)."""
    before, after = Window(), Window()
    for document in documents:
        moment = str((document.get("timing") or {}).get("completed_at") or "")
        if not since <= moment < until:
            continue
        (before if moment < split else after).add(document, thresholds)
    return before, after


@dataclass(frozen=True)
class Finding:
    label: str
    measure: str  # "accepted share", "near-threshold share", "confidences"
    before: float
    after: float
    statistic: float
    critical: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "measure": self.measure,
            "before": round(self.before, 4),
            "after": round(self.after, 4),
            "statistic": round(self.statistic, 4),
            "critical": round(self.critical, 4),
        }


def two_proportions(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    """The pooled two-proportion z statistic (0 when either side is empty or nothing varies)."""
    if not n_a or not n_b:
        return 0.0
    pooled = (hits_a + hits_b) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return 0.0 if spread == 0 else (hits_b / n_b - hits_a / n_a) / spread


def ks_statistic(a: list[float], b: list[float]) -> float:
    """The two-sample Kolmogorov-Smirnov D: the largest gap between the two empirical distributions."""
    a, b = sorted(a), sorted(b)
    gap = 0.0
    for value in (*a, *b):
        gap = max(gap, abs(bisect.bisect_right(a, value) / len(a) - bisect.bisect_right(b, value) / len(b)))
    return gap


@dataclass(frozen=True)
class Distributions:
    """One label's confidences in both windows, summed up: the Kolmogorov-Smirnov D, each side's count and median
    (as ``compare`` computes them from the values; an SQL engine computes them where the values are)."""

    d: float
    na: int
    nb: int
    median_a: float
    median_b: float


def distributions(before: Window, after: Window) -> dict[str, Distributions]:
    """Per label seen in both windows, from the confidences themselves."""
    found = {}
    for name in sorted(set(before.confidences) & set(after.confidences)):
        a, b = before.confidences[name], after.confidences[name]
        found[name] = Distributions(ks_statistic(a, b), len(a), len(b), sorted(a)[len(a) // 2], sorted(b)[len(b) // 2])
    return found


def compare(before: Window, after: Window, summed: dict[str, Distributions] | None = None) -> list[Finding]:
    """What moved, most significant first (``summed``: the confidences' statistics, when the windows do not hold
    the values)."""
    findings: list[Finding] = []
    for measure, counts in (("accepted share", "accepted"), ("near-threshold share", "near")):
        names = set(getattr(before, counts)) | set(getattr(after, counts))
        for name in sorted(names):
            a, b = getattr(before, counts).get(name, 0), getattr(after, counts).get(name, 0)
            z = two_proportions(a, before.images, b, after.images)
            shift = (b / after.images if after.images else 0) - (a / before.images if before.images else 0)
            if abs(z) >= Z_CRITICAL and abs(shift) >= MIN_SHIFT:
                findings.append(Finding(name, measure, a / before.images, b / after.images, abs(z), Z_CRITICAL))
    for name, seen in sorted((distributions(before, after) if summed is None else summed).items()):
        if seen.na < MIN_SAMPLES or seen.nb < MIN_SAMPLES:
            continue
        critical = KS_C * math.sqrt((seen.na + seen.nb) / (seen.na * seen.nb))
        if seen.d > critical:
            findings.append(Finding(name, "confidences (median)", seen.median_a, seen.median_b, seen.d, critical))
    return sorted(findings, key=lambda f: -(f.statistic / f.critical))
