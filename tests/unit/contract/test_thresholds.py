from __future__ import annotations

from lambdas.contract.thresholds import Thresholds
from lambdas.contract.values import Label


def test_boundary_is_inclusive():
    thresholds = Thresholds(50.0)
    assert thresholds.accepts(Label("a", 50.0))
    assert not thresholds.accepts(Label("a", 49.9999))


def test_override_replaces_the_global_minimum_in_both_directions():
    thresholds = Thresholds(50.0, {"cat": 90.0, "dog": 10.0})
    assert not thresholds.accepts(Label("cat", 89.0))
    assert thresholds.accepts(Label("cat", 90.0))
    assert thresholds.accepts(Label("dog", 10.0))
    assert not thresholds.accepts(Label("Dog", 10.0))  # names match exactly
    assert thresholds.lowest() == 10.0


def test_split_orders_by_confidence_and_keeps_candidates_down_to_the_floor():
    thresholds = Thresholds(50.0, {"e": 95.0}, candidate_floor=20.0)
    labels = [Label("b", 60), Label("a", 90), Label("c", 10), Label("d", 60), Label("e", 90), Label("f", 20)]
    accepted, candidates, dropped = thresholds.split(labels)
    assert [label.name for label in accepted] == ["a", "b", "d"]
    assert [label.name for label in candidates] == ["e", "f"]  # below their threshold, at or above the floor
    assert dropped == 1  # c: below the floor
    assert thresholds.lowest() == 20.0  # what a model is asked for


def test_zero_accepts_everything():
    assert Thresholds(0.0).accepts(Label("x", 0.0))
