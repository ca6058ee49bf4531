"""A recommendation shows what it rests on: positives and images, marked "few" under MIN_POSITIVES, and such a
label is not applied without --force; a label the model only ever got wrong says "raise above" its most
confident false positive; one it never found says so."""

from __future__ import annotations

from inferctl.evaluation.evaluate import MIN_POSITIVES, Evaluation, LabelResult
from inferctl.evaluation.metrics import Point
from inferctl.stack.scoring import rows


def evaluation() -> Evaluation:
    labels = [
        LabelResult(
            "sun", 40, [Point(50, 30, 2, 10), Point(70, 28, 0, 12)], Point(70, 28, 0, 12), Point(50, 30, 2, 10)
        ),
        LabelResult("ball", 1, [Point(50, 1, 1, 0), Point(84, 1, 0, 0)], Point(84, 1, 0, 0), Point(50, 1, 1, 0)),
        LabelResult("bee", 0, [Point(50, 0, 3, 0), Point(57, 0, 1, 0)], None, Point(50, 0, 3, 0)),
        LabelResult("car", 5, [Point(50, 0, 0, 5)], None, Point(50, 0, 0, 5)),
    ]
    return Evaluation("detection", 0.5, 10.0, labels, [f"k{i}" for i in range(60)])


def test_each_recommendation_says_what_it_rests_on_and_thin_ones_are_marked():
    table = {row[0]: row for row in rows(evaluation())}
    assert table["sun"][1:3] == ("40 in 60 images", "70")
    assert table["ball"][1:3] == (f"1 in 60 images (few: under {MIN_POSITIVES})", "84")
    assert table["bee"][2] == "raise above 57 (only false positives)"
    assert table["car"][2] == "none: the model never finds it"


def test_only_labels_with_enough_positives_are_applied_unless_forced():
    found = evaluation()
    assert found.recommendations(MIN_POSITIVES) == {"sun": 70}
    assert found.recommendations() == {"sun": 70, "ball": 84}
    assert found.thin() == ["ball"]
