"""Evaluation numbers on hand-computed cases: matching by IoU, counts, precision/recall/F1, recommendations,
and the Ground Truth formats. Pure: no AWS, no stack."""

from __future__ import annotations

import json

import pytest

from inferctl.evaluation import groundtruth
from inferctl.evaluation.evaluate import evaluate
from inferctl.evaluation.groundtruth import GroundTruth, ImageTruth, ManifestError, read_manifest
from inferctl.evaluation.matching import iou, match_boxes
from lambdas.contract.thresholds import Thresholds


def label(name: str, confidence: float, box: tuple[float, float, float, float] | None = None) -> dict[str, object]:
    bounding = None if box is None else dict(zip(("left", "top", "width", "height"), box, strict=True))
    return {"name": name, "confidence": confidence, "bounding_box": bounding}


def result(key: str, found: list[dict[str, object]], threshold: float = 50.0) -> dict[str, object]:
    accepted = [item for item in found if float(item["confidence"]) >= threshold]  # type: ignore[arg-type]
    rest = [item for item in found if item not in accepted]
    return {
        "status": "ok",
        "source": {"key": key},
        "labels": accepted,
        "candidates": rest,
        "thresholds": {"min_confidence": threshold, "candidate_floor": 0.0},
    }


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 1, 1), (0, 0, 1, 1), 1.0),
        ((0, 0, 1, 1), (0, 0, 0.5, 1), 0.5),  # exactly the threshold: a match (inclusive)
        ((0, 0, 0.5, 0.5), (0.5, 0, 0.5, 0.5), 0.0),  # touching edges share no area
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),  # no area, no overlap
        ((0, 0, 0.4, 0.4), (0.2, 0.2, 0.4, 0.4), 0.04 / 0.28),
    ],
)
def test_iou(a, b, expected):
    assert iou(a, b) == pytest.approx(expected)


def test_greedy_matching_gives_a_ground_truth_box_to_one_prediction_only():
    scored = match_boxes("k", [(60.0, (0, 0, 1, 1)), (90.0, (0, 0, 1, 1))], [(0, 0, 1, 1)])
    assert [(item.confidence, item.hit) for item in scored] == [(90.0, True), (60.0, False)]
    at_half = match_boxes("k", [(70.0, (0, 0, 0.5, 1))], [(0, 0, 1, 1)], threshold_iou=0.5)
    assert at_half[0].hit


def test_detection_counts_precision_recall_f1_and_recommendations():
    truth = GroundTruth(
        "detection",
        {
            "a.jpg": ImageTruth(boxes=[("sun", (0, 0, 0.5, 0.5))]),
            "b.jpg": ImageTruth(boxes=[("sun", (0, 0, 0.4, 0.4)), ("sun", (0.6, 0.6, 0.4, 0.4))]),
            "c.jpg": ImageTruth(boxes=[("tree", (0.1, 0.1, 0.2, 0.2))]),  # no predictions at all
            "d.jpg": ImageTruth(),  # a car predicted where there is none
        },
    )
    documents = [
        result("a.jpg", [label("sun", 90, (0, 0, 0.5, 0.5)), label("sun", 60, (0.5, 0.5, 0.5, 0.5))]),
        result("b.jpg", [label("sun", 80, (0, 0, 0.4, 0.4))]),
        result("c.jpg", []),
        result("d.jpg", [label("car", 70, (0.1, 0.1, 0.3, 0.3))]),
    ]
    evaluation = evaluate(documents, truth, Thresholds(50.0))
    by_label = {r.label: r for r in evaluation.labels}

    sun = by_label["sun"]
    assert sun.positives == 3
    counts = {p.threshold: (p.tp, p.fp, p.fn) for p in sun.points}
    assert counts == {0.0: (2, 1, 1), 60.0: (2, 1, 1), 80.0: (2, 0, 1), 90.0: (1, 0, 2)}
    assert sun.recommended is not None
    # The best point sits on the prediction at 80 (stored; the model's own was 79.99995 or more), the next one
    # down at 60: the roundest threshold between them, rounded down, is 79.
    assert sun.recommended.threshold == 79.0
    assert (sun.recommended.precision, sun.recommended.recall, sun.recommended.f1) == pytest.approx((1.0, 2 / 3, 0.8))
    assert (sun.current.tp, sun.current.fp, sun.current.fn) == (2, 1, 1)  # at the current 50

    tree = by_label["tree"]  # ground truth, never predicted: recall 0, precision undefined
    assert (tree.current.tp, tree.current.fn, tree.current.precision, tree.current.recall) == (0, 1, None, 0.0)
    assert tree.recommended is None

    car = by_label["car"]  # predicted, no ground truth: precision 0, recall undefined
    assert (car.positives, car.current.fp, car.current.precision, car.current.recall) == (0, 1, 0.0, None)
    assert car.recommended is None
    assert evaluation.recommendations() == {"sun": 79.0}


def test_min_precision_keeps_the_most_recall_at_that_precision():
    truth = GroundTruth("detection", {"a.jpg": ImageTruth(boxes=[("sun", (0, 0, 0.5, 0.5))])})
    documents = [result("a.jpg", [label("sun", 90, (0, 0, 0.5, 0.5)), label("sun", 60, (0.5, 0.5, 0.5, 0.5))])]
    (sun,) = evaluate(documents, truth, Thresholds(50.0), min_precision=0.9).labels
    assert sun.recommended is not None
    assert (sun.recommended.threshold, sun.recommended.precision) == (89.0, 1.0)


def test_classification_counts_image_by_image():
    truth = GroundTruth(
        "classification",
        {
            "1.jpg": ImageTruth(classes={"cat"}),
            "2.jpg": ImageTruth(classes={"dog"}),
            "3.jpg": ImageTruth(classes={"cat"}),
        },
    )
    documents = [
        result("1.jpg", [label("cat", 90), label("dog", 30)]),
        result("2.jpg", [label("cat", 60)]),
        result("3.jpg", []),
    ]
    by_label = {r.label: r for r in evaluate(documents, truth, Thresholds(50.0)).labels}
    cat = {p.threshold: (p.tp, p.fp, p.fn) for p in by_label["cat"].points}
    assert cat == {0.0: (1, 1, 1), 60.0: (1, 1, 1), 90.0: (1, 0, 1)}
    assert by_label["cat"].recommended is not None
    assert by_label["cat"].recommended.threshold == 89.0  # the roundest value that keeps the 90, above the 60
    assert {p.threshold: (p.tp, p.fp, p.fn) for p in by_label["dog"].points} == {0.0: (0, 1, 1), 30.0: (0, 1, 1)}
    assert by_label["dog"].recommended is None


def test_images_without_a_result_or_with_an_error_are_listed_not_scored():
    truth = GroundTruth("classification", {"1.jpg": ImageTruth(classes={"cat"}), "2.jpg": ImageTruth(classes={"cat"})})
    error = {"status": "error", "source": {"key": "2.jpg"}, "error": {"code": "IMAGE_UNREADABLE"}}
    evaluation = evaluate([error], truth, Thresholds(50.0))
    assert evaluation.not_evaluated == {"1.jpg": "no result", "2.jpg": "error document: IMAGE_UNREADABLE"}
    assert evaluation.evaluated == []


def test_a_ground_truth_object_detection_manifest_with_pixel_boxes():
    # The shape of a Ground Truth bounding-box job's output (AWS docs), boxes in pixels.
    line = {
        "source-ref": "s3://bucket/test_images/1.png",
        "bounding-box": {
            "image_size": [{"width": 640, "height": 480, "depth": 3}],
            "annotations": [{"class_id": 1, "top": 251, "left": 399, "width": 155, "height": 101}],
        },
        "bounding-box-metadata": {
            "objects": [{"confidence": 1}],
            "class-map": {"0": "Echo", "1": "Echo Dot"},
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
        },
    }
    truth = read_manifest([json.dumps(line)])
    assert truth.kind == "detection"
    ((name, box),) = truth.images["test_images/1.png"].boxes
    assert name == "Echo Dot"
    assert box == pytest.approx((399 / 640, 251 / 480, 155 / 640, 101 / 480))


def test_a_classification_manifest_and_a_folder_per_class(tmp_path):
    line = {
        "source-ref": "s3://bucket/test_images/sunrise.png",
        "class": 1,
        "class-metadata": {"confidence": 1, "class-name": "Sunrise", "type": "groundtruth/image-classification"},
    }
    assert read_manifest([json.dumps(line)]).images["test_images/sunrise.png"].classes == {"Sunrise"}
    (tmp_path / "bee").mkdir()
    (tmp_path / "bee" / "b1.jpg").write_bytes(b"x")
    (tmp_path / "wasp").mkdir()
    (tmp_path / "wasp" / "w1.PNG").write_bytes(b"x")
    folders = groundtruth.read_folders(tmp_path, "test_images/")
    assert {key: truth.classes for key, truth in folders.images.items()} == {
        "test_images/bee/b1.jpg": {"bee"},
        "test_images/wasp/w1.PNG": {"wasp"},
    }


def test_a_line_that_is_not_ground_truth_is_named():
    with pytest.raises(ManifestError, match="line 2"):
        read_manifest([json.dumps({"source-ref": "s3://b/k.jpg", "x": 1, "x-metadata": {"class-name": "a"}}), "{oops"])


def test_demo_scenes_are_reproducible_so_ground_truth_and_pixels_agree() -> None:
    from inferctl.samples import scene

    boxes_a: list[tuple[str, tuple[int, int, int, int]]] = []
    boxes_b: list[tuple[str, tuple[int, int, int, int]]] = []
    first = scene(11, ["sun", "tree", "car"], boxes_a)
    second = scene(11, ["sun", "tree", "car"], boxes_b)
    assert first.tobytes() == second.tobytes()
    assert boxes_a == boxes_b
    assert scene(12, ["sun", "tree", "car"]).tobytes() != first.tobytes()
