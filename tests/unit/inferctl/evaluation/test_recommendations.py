"""A recommendation is a promise: "write this threshold and you get these TP / FP / FN". Checked on 500
generated images the way the function would keep its promise: the model's own (unrounded) confidences decide
what is accepted, the result documents store them rounded. Also: IoU at exactly 0.5, label names that differ
only in case, class-map gaps, multi-label classification manifests, and what the comparison may advise."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

import pytest

from inferctl.evaluation.compare import advice, compare
from inferctl.evaluation.evaluate import Evaluation, evaluate, none_evaluated
from inferctl.evaluation.groundtruth import GroundTruth, ImageTruth, read_manifest
from inferctl.evaluation.matching import iou, match_boxes
from inferctl.evaluation.metrics import settable
from lambdas.contract.results import CONFIDENCE_DECIMALS
from lambdas.contract.thresholds import Thresholds

NAMES = ("sun", "tree", "car", "ball", "house")
FLOOR = 10.0
Box = tuple[float, float, float, float]


def generated(seed: int = 2026, images: int = 500) -> tuple[GroundTruth, list[dict[str, Any]]]:
    """Scenes with 0-3 objects; a model that finds most (a box near the truth) with a confidence that tends to be
    higher for a hit, and adds false alarms. Each prediction keeps its unrounded confidence in ``raw``."""
    rng = random.Random(seed)
    truth: dict[str, ImageTruth] = {}
    found: list[list[tuple[str, float, Box]]] = []
    for index in range(images):
        boxes: list[tuple[str, Box]] = []
        predictions: list[tuple[str, float, Box]] = []
        for _ in range(rng.randint(0, 3)):
            name = rng.choice(NAMES)
            left, top = rng.uniform(0, 0.6), rng.uniform(0, 0.6)
            box = (left, top, rng.uniform(0.1, 0.35), rng.uniform(0.1, 0.35))
            boxes.append((name, box))
            if rng.random() < 0.8:
                nudge = rng.uniform(-0.02, 0.02)
                predictions.append((name, rng.uniform(35, 100), (box[0] + nudge, box[1], box[2], box[3])))
        for _ in range(rng.randint(0, 2)):
            box = (rng.uniform(0, 0.7), rng.uniform(0, 0.7), rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.3))
            predictions.append((rng.choice(NAMES), rng.uniform(FLOOR, 80), box))
        truth[f"test_images/{index:04d}.jpg"] = ImageTruth(boxes=boxes)
        found.append(predictions)
    return GroundTruth("detection", truth), [
        document(key, predictions) for key, predictions in zip(truth, found, strict=True)
    ]


def document(key: str, predictions: Sequence[tuple[str, float, Box]], keep: Thresholds | None = None) -> dict[str, Any]:
    """A result document as the function writes it: accepted labels and candidates from the model's own
    confidences, stored rounded (CONFIDENCE_DECIMALS) with 6-decimal boxes."""
    keep = keep or Thresholds(50.0, candidate_floor=FLOOR)
    labels, candidates = [], []
    for name, raw, box in predictions:
        stored = {
            "name": name,
            "confidence": round(raw, CONFIDENCE_DECIMALS),
            "raw": raw,
            "bounding_box": dict(zip(("left", "top", "width", "height"), (round(v, 6) for v in box), strict=True)),
        }
        threshold = keep.threshold_for(name)
        if raw >= threshold:
            labels.append(stored)
        elif raw >= keep.candidate_floor:
            candidates.append(stored)
    return {
        "status": "ok",
        "source": {"key": key},
        "labels": labels,
        "candidates": candidates,
        "thresholds": {"min_confidence": keep.min_confidence, "candidate_floor": keep.candidate_floor},
    }


def rerun(documents: list[dict[str, Any]], thresholds: Thresholds) -> list[dict[str, Any]]:
    """The same images through the function again with ``thresholds``: the model answers what it answered, the
    function accepts on the unrounded confidence."""
    again = []
    for old in documents:
        predictions = [
            (label["name"], label["raw"], tuple(label["bounding_box"].values()))
            for label in [*old["labels"], *old["candidates"]]
        ]
        again.append(document(old["source"]["key"], predictions, thresholds))
    return again


def accepted_counts(evaluation: Evaluation, name: str) -> tuple[int, int, int]:
    (result,) = [r for r in evaluation.labels if r.label == name]
    return result.current.tp, result.current.fp, result.current.fn


@pytest.mark.parametrize("min_precision", [None, 0.5, 0.8, 0.9])
def test_applying_each_recommendation_gives_the_counts_it_promised(min_precision: float | None):
    truth, documents = generated()
    evaluation = evaluate(documents, truth, Thresholds(50.0, candidate_floor=FLOOR), min_precision=min_precision)
    recommended = evaluation.recommendations()
    assert len(recommended) == len(NAMES)  # every label has one: the check below covers each

    applied = Thresholds(50.0, per_label=recommended, candidate_floor=FLOOR)
    on_stored = evaluate(documents, truth, applied)  # what-if on the stored results
    on_rerun = evaluate(rerun(documents, applied), truth, applied)  # what the function would then write
    for result in evaluation.labels:
        promise = result.recommended
        assert promise is not None
        counts = (promise.tp, promise.fp, promise.fn)
        assert accepted_counts(on_stored, result.label) == counts, result.label
        assert accepted_counts(on_rerun, result.label) == counts, result.label
        if min_precision is not None:
            assert promise.precision is not None
            assert promise.precision >= min_precision


def test_rounding_a_recommendation_up_would_break_its_promise():
    """The check above can fail: written rounded to 2 decimals (what the tool did), the thresholds change the
    counts for some labels, because the best threshold sits on a prediction's own confidence."""
    truth, documents = generated()
    broken = 0
    for min_precision in (None, 0.5, 0.8, 0.9):
        evaluation = evaluate(documents, truth, Thresholds(50.0, candidate_floor=FLOOR), min_precision=min_precision)
        exact = {r.label: r for r in evaluation.labels if r.recommended}
        chosen = {
            name: max(p.threshold for p in r.points if p.threshold <= r.recommended.threshold + 1)  # type: ignore[union-attr]
            for name, r in exact.items()
        }
        rounded = Thresholds(50.0, per_label={n: round(t, 2) for n, t in chosen.items()}, candidate_floor=FLOOR)
        again = evaluate(rerun(documents, rounded), truth, rounded)
        for name, result in exact.items():
            promise = result.recommended
            assert promise is not None
            broken += accepted_counts(again, name) != (promise.tp, promise.fp, promise.fn)
    assert broken > 0


@pytest.mark.parametrize(
    ("threshold", "below", "floor", "expected"),
    [
        (80.0, 60.0, 10.0, 79.0),  # the roundest number between, rounded down
        (80.0, None, 10.0, 79.0),  # nothing below: anything down to the floor
        (62.3456, 62.3455, 10.0, 62.3456),  # no room for the stored rounding: exact
        (62.3456, 62.3, 10.0, 62.34),
        (10.0, None, 10.0, 10.0),  # the floor itself
        (10.5, None, 10.0, 10.0),  # never below the floor: nothing is known there
        (70.00001, 70.0, 10.0, 70.00001),
    ],
)
def test_the_threshold_to_write_is_rounded_down_within_its_gap(threshold, below, floor, expected):
    assert settable(threshold, below, floor) == expected
    value = settable(threshold, below, floor)
    assert value <= threshold
    assert below is None or value > below
    assert value >= floor


def test_iou_of_exactly_one_half_matches_as_in_pixels():
    # A 100 x 100 ground-truth box at y=11 of a 640 x 480 image, a 100 x 50 prediction inside it: 0.5 in pixels,
    # 0.4999999999999999 as ratios; the result's 6-decimal box moves it again (either way).
    width, height = 640, 480
    truth = (0 / width, 11 / height, 100 / width, 100 / height)
    exact = (0 / width, 11 / height, 100 / width, 50 / height)
    stored: Box = (round(exact[0], 6), round(exact[1], 6), round(exact[2], 6), round(exact[3], 6))
    assert iou(truth, exact) < 0.5  # the floats, before the tolerance
    assert [s.hit for s in match_boxes("k", [(90.0, exact)], [truth], 0.5)] == [True]
    assert [s.hit for s in match_boxes("k", [(90.0, stored)], [truth], 0.5)] == [True]
    below = (0 / width, 11 / height, 100 / width, 49 / height)  # 0.49 in pixels: no match
    assert [s.hit for s in match_boxes("k", [(90.0, below)], [truth], 0.5)] == [False]


def test_label_names_that_differ_only_in_case_are_warned():
    truth = GroundTruth("detection", {"a.jpg": ImageTruth(boxes=[("Dog", (0, 0, 0.5, 0.5))])})
    found = [("dog", 90.0, (0.0, 0.0, 0.5, 0.5))]
    evaluation = evaluate([document("a.jpg", found)], truth, Thresholds(50.0, candidate_floor=FLOOR))
    assert {r.label for r in evaluation.labels} == {"Dog", "dog"}  # still two labels: that is the point
    assert len(evaluation.warnings) == 1
    assert "'Dog'" in evaluation.warnings[0]
    assert "'dog'" in evaluation.warnings[0]


def test_a_class_id_missing_from_the_class_map_is_warned_once():
    line = {
        "source-ref": "s3://bucket/test_images/a.jpg",
        "boxes": {
            "image_size": [{"width": 100, "height": 100, "depth": 3}],
            "annotations": [
                {"class_id": 0, "left": 0, "top": 0, "width": 10, "height": 10},
                {"class_id": 7, "left": 20, "top": 20, "width": 10, "height": 10},
            ],
        },
        "boxes-metadata": {"class-map": {"0": "sun"}, "type": "groundtruth/object-detection"},
    }
    second = {**line, "source-ref": "s3://bucket/test_images/b.jpg"}
    truth = read_manifest([json.dumps(line), json.dumps(second)])
    assert sorted(name for name, _ in truth.images["test_images/a.jpg"].boxes) == ["class_7", "sun"]
    assert len(truth.warnings) == 1
    assert "class_id 7" in truth.warnings[0]
    assert "line 1, 2" in truth.warnings[0]


def test_a_multi_label_classification_manifest():
    # SageMaker Ground Truth's multi-label image classification output, as its documentation shows it
    # (docs.aws.amazon.com/sagemaker/latest/dg/sms-data-output.html).
    line = {
        "source-ref": "s3://AWSDOC-EXAMPLE-BUCKET/example_image.jpg",
        "image-label-attribute-name": [1, 0, 8],
        "image-label-attribute-name-metadata": {
            "job-name": "labeling-job/image-label-attribute-name",
            "class-map": {"1": "bicycle", "0": "person", "8": "clothing"},
            "human-annotated": "yes",
            "creation-date": "2020-02-27T21:36:25.000201",
            "confidence-map": {"1": 0.95, "0": 0.77, "8": 0.2},
            "type": "groundtruth/image-classification-multilabel",
        },
    }
    truth = read_manifest([json.dumps(line)])
    assert truth.kind == "classification"
    assert truth.images == {"example_image.jpg": ImageTruth(classes={"bicycle", "person", "clothing"})}
    assert truth.buckets == {"AWSDOC-EXAMPLE-BUCKET"}

    found = [("bicycle", 91.0, (0, 0, 1, 1)), ("person", 40.0, (0, 0, 1, 1)), ("dog", 70.0, (0, 0, 1, 1))]
    evaluation = evaluate([document("example_image.jpg", found)], truth, Thresholds(50.0, candidate_floor=FLOOR))
    counts = {r.label: (r.current.tp, r.current.fp, r.current.fn) for r in evaluation.labels}
    assert counts == {
        "bicycle": (1, 0, 0),
        "clothing": (0, 0, 1),
        "dog": (0, 1, 0),
        "person": (0, 0, 1),  # found at 40, below the current 50
    }


def test_none_evaluated_says_why():
    truth = GroundTruth(
        "detection", {"test_images/a.jpg": ImageTruth(), "test_images/b.jpg": ImageTruth()}, buckets={"old-bucket"}
    )
    assert "no results yet" in none_evaluated(truth, [], "stack-bucket", {})
    elsewhere = [document("test_images/other.jpg", [])]
    why = none_evaluated(truth, elsewhere, "stack-bucket", {})
    assert "'test_images/a.jpg'" in why
    assert "'test_images/other.jpg'" in why
    assert "old-bucket" in why
    assert "stack-bucket" in why
    errors = {"test_images/a.jpg": "error document: IMAGE_UNREADABLE", "test_images/b.jpg": "error document: X"}
    assert "error documents" in none_evaluated(truth, elsewhere, "stack-bucket", errors)


def with_challenger(
    key: str, mine: list[tuple[str, float, Box]], theirs: list[tuple[str, float, Box]]
) -> dict[str, Any]:
    primary, challenger = document(key, mine), document(key, theirs)
    return {
        **primary,
        "model": {"backend": "rekognition", "model_id": "arn:primary"},
        "timing": {"backend_latency_ms": 10.0},
        "challenger": {
            "status": "ok",
            "backend": "sagemaker",
            "model_id": "challenger",
            "latency_ms": 5.0,
            "labels": challenger["labels"],
            "candidates": challenger["candidates"],
        },
    }


def test_the_comparison_advises_only_what_its_numbers_support():
    truth = GroundTruth("detection", {f"{i}.jpg": ImageTruth(boxes=[("sun", (0, 0, 0.5, 0.5))]) for i in range(40)})
    hit, miss = ("sun", 90.0, (0.0, 0.0, 0.5, 0.5)), ("sun", 90.0, (0.5, 0.5, 0.4, 0.4))
    thresholds = Thresholds(50.0, candidate_floor=FLOOR)

    worse = compare([with_challenger(f"{i}.jpg", [hit], [miss]) for i in range(40)], truth, thresholds)
    assert worse is not None
    said = advice(worse)
    assert said.startswith("keep the primary")
    assert "promote" not in said.lower().split("retire")[0]
    assert "F1 0% (TP 0, FP 40, FN 40)" in said
    assert "F1 100% (TP 40, FP 0, FN 0)" in said
    assert "on the 40 images both answered (40 positives)" in said
    assert "label more" not in said  # 40 images and 40 positives: enough to decide on

    better = compare([with_challenger(f"{i}.jpg", [miss], [hit]) for i in range(40)], truth, thresholds)
    assert better is not None
    assert advice(better).startswith("the challenger scores better")
    assert "inferctl challenger promote" in advice(better)

    same = compare([with_challenger(f"{i}.jpg", [hit], [hit]) for i in range(3)], truth, thresholds)
    assert same is not None
    assert advice(same).startswith("no difference")
    assert "only 3 images and only 3 positives: label more before deciding" in advice(same)
