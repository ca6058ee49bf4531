"""Drift between two windows: a stable model moves nothing; a shifted one shows what moved."""

from __future__ import annotations

import random
from typing import Any

from inferctl.evaluation import drift
from lambdas.contract.thresholds import Thresholds

THRESHOLDS = Thresholds(min_confidence=50.0, candidate_floor=10.0)


def documents(count: int, seed: int, dog_rate: float, dog_mean: float, start: str) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for index in range(count):
        found: list[dict[str, Any]] = []
        if rng.random() < 0.5:
            found.append({"name": "cat", "confidence": min(99.0, max(10.0, rng.gauss(70, 12)))})
        if rng.random() < dog_rate:
            found.append({"name": "dog", "confidence": min(99.0, max(10.0, rng.gauss(dog_mean, 12)))})
        out.append(
            {
                "status": "ok",
                "timing": {"completed_at": f"{start}T{index % 24:02d}:00:00.000Z"},
                "labels": [f for f in found if f["confidence"] >= 50],
                "candidates": [f for f in found if f["confidence"] < 50],
            }
        )
    return out


def test_the_same_model_on_the_same_traffic_moves_nothing():
    quiet = 0
    for seed in range(20):
        before = documents(2000, seed, 0.3, 70, "2026-11-27")
        after = documents(2000, 1000 + seed, 0.3, 70, "2026-11-28")
        early, late = drift.windows(before + after, "2026-11-28", THRESHOLDS)
        quiet += not drift.compare(early, late)
    assert quiet >= 18  # at ALPHA 0.01 with a few tests per label, nearly every stable pair is quiet


def test_a_label_seen_more_often_and_less_surely_is_listed():
    before = documents(2000, 1, 0.3, 70, "2026-11-27")
    after = documents(2000, 2, 0.4, 55, "2026-11-28")  # dogs: 30% -> 40% of images, confidences 70 -> 55
    early, late = drift.windows(before + after, "2026-11-28", THRESHOLDS)
    moved = {(f.label, f.measure) for f in drift.compare(early, late)}
    assert ("dog", "confidences (median)") in moved
    assert ("dog", "near-threshold share") in moved
    assert not any(label == "cat" for label, _ in moved)


def test_the_ks_statistic_is_the_largest_gap_between_the_distributions():
    assert drift.ks_statistic([1, 2, 3, 4], [1, 2, 3, 4]) == 0
    assert drift.ks_statistic([1, 2], [3, 4]) == 1
    assert drift.ks_statistic([1, 2, 3, 4], [3, 4, 5, 6]) == 0.5
