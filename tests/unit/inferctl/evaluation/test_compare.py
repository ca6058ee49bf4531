"""Side-by-side evaluation of the primary and a challenger, proven on a hand-computed classification case."""

from __future__ import annotations

from typing import Any

import pytest

from inferctl.evaluation.compare import compare, label_rows, model_rows
from inferctl.evaluation.groundtruth import GroundTruth, ImageTruth
from lambdas.contract.thresholds import Thresholds

THRESHOLDS = Thresholds(50.0, {}, 10.0)


def label(name: str, confidence: float) -> dict[str, Any]:
    return {"name": name, "confidence": confidence, "bounding_box": None}


def document(key: str, labels, candidates, latency: float, challenger: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "status": "ok",
        "source": {"bucket": "b", "key": key, "version_id": "v"},
        "model": {"backend": "rekognition", "model_id": "arn:bees-v1"},
        "thresholds": {"min_confidence": 50.0, "candidate_floor": 10.0},
        "labels": labels,
        "candidates": candidates,
        "timing": {"backend_latency_ms": latency},
        "challenger": challenger,
    }


def shadow(labels, candidates, latency: float) -> dict[str, Any]:
    return {
        "status": "ok",
        "backend": "sagemaker",
        "model_id": "bees-diy",
        "labels": labels,
        "candidates": candidates,
        "latency_ms": latency,
        "error": None,
    }


TRUTH = GroundTruth(
    "classification",
    {
        "t/a.jpg": ImageTruth(classes={"bee"}),
        "t/b.jpg": ImageTruth(classes={"bee"}),
        "t/c.jpg": ImageTruth(classes={"bee"}),
        "t/d.jpg": ImageTruth(classes={"flower"}),
    },
)
DOCUMENTS = [
    document("t/a.jpg", [label("bee", 99)], [], 100, shadow([label("bee", 60)], [], 10)),
    document("t/b.jpg", [label("bee", 95)], [], 200, shadow([], [label("bee", 30)], 20)),
    document("t/c.jpg", [], [label("bee", 40)], 300, shadow([], [], 30)),
    document("t/d.jpg", [label("flower", 90)], [], 400, shadow([label("bee", 55)], [label("flower", 20)], 40)),
    # Not compared: the challenger did not see it, or failed on it.
    document("t/e.jpg", [label("bee", 80)], [], 500, None),
    document("t/f.jpg", [label("bee", 80)], [], 600, {"status": "error", "error": {"code": "BACKEND_THROTTLED"}}),
]


def test_both_models_are_scored_on_the_images_both_answered_with_hand_computed_numbers():
    comparison = compare(DOCUMENTS, TRUTH, THRESHOLDS)
    assert comparison is not None
    primary, challenger = comparison.models
    assert comparison.images == 4
    # Primary at 50 %: bee TP a,b FN c; flower TP d.
    now = primary.overall("current")
    assert (now.tp, now.fp, now.fn) == (3, 0, 1)
    assert now.f1 == pytest.approx(6 / 7)
    assert primary.evaluation.recommendations() == {"bee": 39.0, "flower": 89.0}  # rounded down: see settable
    best = primary.overall("recommended")
    assert (best.tp, best.fp, best.fn) == (4, 0, 0)
    # Challenger at 50 %: bee TP a, FP d, FN b c; flower FN d (20 % is below 50 %).
    now = challenger.overall("current")
    assert (now.tp, now.fp, now.fn) == (1, 1, 3)
    assert (now.precision, now.recall) == (0.5, 0.25)
    # Best F1 for bee is 2/3 at 10 % and at 30 %: the higher threshold wins; flower at 20 %.
    assert challenger.evaluation.recommendations() == {"bee": 29.0, "flower": 19.0}
    best = challenger.overall("recommended")
    assert (best.tp, best.fp, best.fn) == (3, 1, 1)
    # Agreement on accepted labels: a (bee = bee) and c (none = none); b and d disagree.
    assert comparison.agreement == 0.5
    assert comparison.disagreements == [
        {"key": "t/b.jpg", "primary": ["bee"], "challenger": []},
        {"key": "t/d.jpg", "primary": ["flower"], "challenger": ["bee"]},
    ]
    assert primary.latency(50) == 250
    assert challenger.latency(50) == 25
    assert primary.cost_per_thousand() == pytest.approx(96.0)


def test_the_tables_read_like_the_blogs_comparison():
    comparison = compare(DOCUMENTS, TRUTH, THRESHOLDS)
    assert comparison is not None
    rows = model_rows(comparison)
    assert rows[0][0] == "primary: rekognition arn:bees-v1"
    assert rows[0][1:3] == ("100% / 75% / 86%", "100% / 100% / 100%")
    assert rows[1][0] == "challenger: sagemaker bees-diy"
    assert rows[1][1:3] == ("50% / 25% / 33%", "75% / 75% / 75%")
    assert rows[1][3] == "25 / 37"
    labels = {row[0]: row for row in label_rows(comparison)}
    assert labels["bee"][2] == "100% / 100% / 100% @ 39"
    assert labels["bee"][3] == "67% / 67% / 67% @ 29"


def test_without_challenger_answers_there_is_nothing_to_compare():
    alone = [d for d in DOCUMENTS if d["challenger"] is None]
    assert compare(alone, TRUTH, THRESHOLDS) is None
