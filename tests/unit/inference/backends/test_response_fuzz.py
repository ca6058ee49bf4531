"""A seeded fuzz of what a SageMaker endpoint may answer: the documented response shapes (``tests/fixtures``)
with values swapped for other types, non-finite or out-of-range numbers, and keys or rows removed, parsed under
every response format setting. Whatever the model sends must end as labels that are finite confidences from 0
to 100 with finite, non-negative boxes, or as a documented PermanentError (an error document), never as an
exception that escapes to the dead-letter queue unexplained."""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Iterator
from typing import Any

from lambdas.contract.errors import PermanentError
from lambdas.inference.backends import sagemaker_formats
from tests.support.fixtures import load

SEED = 20261129
MUTANTS_PER_SHAPE = 1500
SHAPES = (
    "sagemaker_image_classification_bare_list",
    "sagemaker_image_classification_jsonlines",
    "sagemaker_object_detection_docs",
    "sagemaker_object_detection_empty",
    "tensorflow_serving_classification",
    "tensorflow_serving_detection",
)
SETTINGS = ("auto", "image-classification", "object-detection", "tensorflow-serving")
ODD_VALUES: list[Any] = [
    None, True, False, "x", "", "0.5", -1, 0, 1, 2, 7, 256, 10**30, -(10**30), 1e308, -0.0, 0.5, 1.5, -0.5,
    [], {}, [1], [[0.1]], {"a": 1}, float("nan"), float("inf"), float("-inf"),
]  # fmt: skip


def places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document (lists: their first eight items)."""
    yield path
    items = value.items() if isinstance(value, dict) else enumerate(value[:8]) if isinstance(value, list) else ()
    for key, item in items:
        yield from places(item, (*path, key))


def mutant(document: Any, rng: random.Random) -> Any:
    """One to three changes: a value replaced by an odd one, or a key or row removed."""
    document = copy.deepcopy(document)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(list(places(document)))
        if not path:
            document = copy.deepcopy(rng.choice(ODD_VALUES))
            continue
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if rng.random() < 0.7:
            parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            del parent[path[-1]]
    return document


def sound(label: Any) -> bool:
    finite = isinstance(label.confidence, float) and math.isfinite(label.confidence)
    if not (finite and 0.0 <= label.confidence <= 100.0):
        return False
    box = label.box
    if box is None:
        return True
    sides = (box.left, box.top, box.width, box.height)
    return all(isinstance(v, float) and math.isfinite(v) for v in sides) and box.width >= 0 and box.height >= 0


def test_no_model_answer_escapes_or_becomes_an_unsound_label():
    rng = random.Random(SEED)
    runs, checked, failures = 0, 0, []
    for shape in SHAPES:
        original = load(f"responses/{shape}.json")
        assert sagemaker_formats.parse(original, "auto", {}, 1000)[1] or shape.endswith(
            "empty"
        )  # the shape itself parses
        for number in range(MUTANTS_PER_SHAPE):
            document = mutant(original, rng)
            for setting in SETTINGS:
                runs += 1
                try:
                    _, labels, _ = sagemaker_formats.parse(document, setting, {1: "dog", 7: "bathtub"}, 1000)
                except PermanentError:
                    continue
                except Exception as exc:  # any other exception would reach the DLQ unexplained
                    failures.append(f"{shape} #{number} under {setting}: {type(exc).__name__}: {exc}")
                    continue
                checked += len(labels)
                failures += [f"{shape} #{number} under {setting}: {label}" for label in labels if not sound(label)]
    assert failures == [], failures[:5]
    assert runs == len(SHAPES) * MUTANTS_PER_SHAPE * len(SETTINGS)
    assert checked > 10_000, f"only {checked} labels came out: the fuzz no longer reaches the labels"
