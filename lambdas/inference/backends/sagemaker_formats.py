"""Parsers for SageMaker endpoint responses, into the shared label shape (confidence 0-100, boxes as ratios).

Formats (``SAGEMAKER_RESPONSE_FORMAT``), each as AWS documents or its examples show it:
- ``image-classification`` (built-in algorithm): a real-time endpoint answers a bare JSON list
  ``[p0, p1, ...]`` (AWS's Image-classification-fulltraining example reads it with ``np.argmax``); batch
  transform writes the JSON-lines form ``{"prediction": [p0, p1, ...]}``. Both are accepted.
- ``object-detection`` (built-in algorithm): ``{"prediction": [[class, score, xmin, ymin, xmax, ymax], ...]}``
  with coordinates normalised to 0-1 and class indices as floats; an empty list when nothing was found.
- ``tensorflow-serving-classification``: TF Serving's predict for a classifier, ``{"predictions": [[p0, ...]]}``
  (one row per instance; we send one).
- ``tensorflow-serving-detection``: the TF Object Detection API behind TF Serving: ``{"predictions":
  [{"detection_boxes": [[ymin, xmin, ymax, xmax], ...], "detection_classes": [...], "detection_scores": [...]}]}``.
- ``tensorflow-serving``: either TF Serving form, told apart by the row type.
- ``auto``: recognise one of the above by its shape (they do not overlap; an empty ``prediction`` list is
  a detector that found nothing, since a classifier always answers one probability per class).

Scores must be finite numbers from 0 to 1 and coordinates finite: ``json.loads`` accepts ``NaN`` and
``Infinity``, so they are refused at parse time. A response that breaks these rules is a
``MODEL_OUTPUT_INVALID`` error document, never a label.
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from lambdas.contract import errors
from lambdas.contract.errors import PermanentError
from lambdas.contract.values import BoundingBox, Label

FORMAT_SETTING = "SAGEMAKER_RESPONSE_FORMAT"
SCORE_TOLERANCE = 1e-6  # float noise above 1.0 (softmax sums) is still a probability


class ResponseFormatError(PermanentError):
    """The endpoint's answer does not have the configured (or any known) shape. Retrying the same image would
    get the same answer (and bill again): an error document, a metric and an alarm instead. After fixing the
    setting or the model, ``inferctl reprocess --errors RESPONSE_FORMAT_UNKNOWN`` runs them again."""

    def __init__(self, message: str) -> None:
        super().__init__(errors.RESPONSE_FORMAT_UNKNOWN, f"{message} (check {FORMAT_SETTING})")


class ModelOutputError(PermanentError):
    """The answer has a known shape but values no confidence can come from (NaN, infinity, out of range)."""

    def __init__(self, message: str) -> None:
        super().__init__(errors.MODEL_OUTPUT_INVALID, message)


def loads(raw: bytes) -> Any:
    """The response body as JSON; non-finite numbers and non-JSON bodies are refused with a clear message."""

    def refuse(constant: str) -> Any:
        raise ModelOutputError(f"the response contains the non-finite number {constant}")

    try:
        return json.loads(raw, parse_constant=refuse)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ResponseFormatError(f"the endpoint answered {len(raw)} bytes that are not JSON: {raw[:80]!r}") from None


def describe(payload: Any) -> str:
    """The shape received, for an error message: the top-level type, its keys or its first element."""
    if isinstance(payload, dict):
        keys = ", ".join(sorted(map(str, payload))[:6]) or "no keys"
        return f"a JSON object with keys {keys}"
    if isinstance(payload, list):
        first = type(payload[0]).__name__ if payload else "nothing"
        return f"a JSON list of {len(payload)} items, the first a {first}"
    return f"a JSON {type(payload).__name__}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _score(value: Any, where: str) -> float:
    """A 0-1 score as percent; ModelOutputError names the value and where it was."""
    if not _is_number(value) or not math.isfinite(value) or not -SCORE_TOLERANCE <= value <= 1 + SCORE_TOLERANCE:
        raise ModelOutputError(f"{where} is {value!r}; scores must be finite numbers from 0 to 1")
    return min(100.0, max(0.0, float(value) * 100.0))


def _coordinate(value: Any, where: str) -> float:
    if not _is_number(value) or not math.isfinite(value):
        raise ModelOutputError(f"{where} is {value!r}; box coordinates must be finite numbers")
    return float(value)


def _class_index(value: Any, where: str) -> int:
    if not _is_number(value) or not math.isfinite(value) or float(value) != int(value):
        raise ModelOutputError(f"{where} is {value!r}; class indices must be whole numbers")
    return int(value)


def _class_name(index: int, class_names: Mapping[int, str]) -> str:
    return class_names.get(index, f"class_{index}")


def _probabilities(values: list[Any], where: str, class_names: Mapping[int, str]) -> Iterator[Label]:
    for index, value in enumerate(values):
        yield Label(name=_class_name(index, class_names), confidence=_score(value, f"{where}[{index}]"))


def parse_image_classification(payload: Any, class_names: Mapping[int, str]) -> Iterator[Label]:
    values = payload.get("prediction") if isinstance(payload, dict) else payload
    where = "prediction" if isinstance(payload, dict) else "response"
    if not isinstance(values, list) or not values or not all(_is_number(v) for v in values):
        raise ResponseFormatError(
            "expected image-classification output [p0, p1, ...] or {'prediction': [p0, ...]}, "
            f"got {describe(payload)}"
        )
    return _probabilities(values, where, class_names)


def parse_object_detection(payload: Any, class_names: Mapping[int, str]) -> Iterator[Label]:
    rows = payload.get("prediction") if isinstance(payload, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, list) and len(row) == 6 for row in rows):
        raise ResponseFormatError(
            "expected object-detection output {'prediction': [[class, score, xmin, ymin, xmax, ymax], ...]}, "
            f"got {describe(payload)}"
        )
    return _detections(rows, class_names)


def _detections(rows: list[list[Any]], class_names: Mapping[int, str]) -> Iterator[Label]:
    for number, (raw_class, score, *corners) in enumerate(rows):
        where = f"prediction[{number}]"
        class_index = _class_index(raw_class, f"{where} class")
        if class_index < 0:
            continue  # the built-in detector pads with class -1
        xmin, ymin, xmax, ymax = (_coordinate(c, f"{where} box") for c in corners)
        yield Label(
            name=_class_name(class_index, class_names),
            confidence=_score(score, f"{where} score"),
            box=BoundingBox.from_corners(xmin, ymin, xmax, ymax),
        )


def parse_tensorflow_serving_classification(payload: Any, class_names: Mapping[int, str]) -> Iterator[Label]:
    predictions = payload.get("predictions") if isinstance(payload, dict) else None
    if (
        not isinstance(predictions, list)
        or not predictions
        or not isinstance(predictions[0], list)
        or not predictions[0]
        or not all(_is_number(v) for v in predictions[0])
    ):
        raise ResponseFormatError(
            f"expected TensorFlow Serving classification output {{'predictions': [[p0, ...]]}}, got {describe(payload)}"
        )
    return _probabilities(predictions[0], "predictions[0]", class_names)  # one instance per request


def parse_tensorflow_serving_detection(payload: Any, class_names: Mapping[int, str]) -> Iterator[Label]:
    predictions = payload.get("predictions") if isinstance(payload, dict) else None
    if not isinstance(predictions, list) or not predictions or not isinstance(predictions[0], dict):
        raise ResponseFormatError(
            "expected TensorFlow Serving detection output {'predictions': [{'detection_boxes': ...}]}, "
            f"got {describe(payload)}"
        )
    prediction = predictions[0]  # one instance per request
    boxes = prediction.get("detection_boxes")
    classes = prediction.get("detection_classes")
    scores = prediction.get("detection_scores")
    if not (isinstance(boxes, list) and isinstance(classes, list) and isinstance(scores, list)):
        raise ResponseFormatError(
            "TensorFlow Serving output lacks detection_boxes/classes/scores lists, got "
            f"{describe(prediction)} in predictions[0]"
        )
    count = prediction.get("num_detections", len(scores))
    if not _is_number(count) or not math.isfinite(count):
        raise ModelOutputError(f"num_detections is {count!r}")
    return _tf_detections(boxes, classes, scores, int(count), class_names)


def _tf_detections(
    boxes: list[Any], classes: list[Any], scores: list[Any], count: int, class_names: Mapping[int, str]
) -> Iterator[Label]:
    for number, (box, class_value, score) in enumerate(zip(boxes, classes, scores, strict=False)):
        if number >= count:
            return
        where = f"predictions[0] detection {number}"
        if not isinstance(box, list) or len(box) != 4:
            raise ResponseFormatError(f"{where}: a box is [ymin, xmin, ymax, xmax], got {box!r}")
        ymin, xmin, ymax, xmax = (_coordinate(c, f"{where} box") for c in box)
        yield Label(
            name=_class_name(_class_index(class_value, f"{where} class"), class_names),
            confidence=_score(score, f"{where} score"),
            box=BoundingBox.from_corners(xmin, ymin, xmax, ymax),
        )


def parse_tensorflow_serving(payload: Any, class_names: Mapping[int, str]) -> Iterator[Label]:
    """Either TF Serving form (the row type tells them apart)."""
    predictions = payload.get("predictions") if isinstance(payload, dict) else None
    if isinstance(predictions, list) and predictions and isinstance(predictions[0], list):
        return parse_tensorflow_serving_classification(payload, class_names)
    return parse_tensorflow_serving_detection(payload, class_names)


PARSERS: dict[str, Callable[[Any, Mapping[int, str]], Iterable[Label]]] = {
    "image-classification": parse_image_classification,
    "object-detection": parse_object_detection,
    "tensorflow-serving-classification": parse_tensorflow_serving_classification,
    "tensorflow-serving-detection": parse_tensorflow_serving_detection,
    "tensorflow-serving": parse_tensorflow_serving,
}


def detect_format(payload: Any) -> str:
    """Name the format of a response by its shape; ResponseFormatError names the shape when none fits."""
    if isinstance(payload, list) and payload and all(_is_number(v) for v in payload):
        return "image-classification"
    if isinstance(payload, dict):
        predictions = payload.get("predictions")
        if isinstance(predictions, list) and predictions:
            if isinstance(predictions[0], dict):
                return "tensorflow-serving-detection"
            if isinstance(predictions[0], list):
                return "tensorflow-serving-classification"
        prediction = payload.get("prediction")
        if isinstance(prediction, list):
            if not prediction or isinstance(prediction[0], list):
                return "object-detection"
            return "image-classification"
    raise ResponseFormatError(f"unrecognised response: {describe(payload)}; set one of {', '.join(PARSERS)}")


def parse(
    payload: Any, response_format: str, class_names: Mapping[int, str], max_labels: int | None = None
) -> tuple[str, list[Label], int]:
    """(format used, labels, how many were dropped by ``max_labels``). Every value is validated, kept or not;
    only the ``max_labels`` most confident become labels (highest first), however many the model sent."""
    if response_format == "auto":
        chosen = detect_format(payload)
    elif response_format == "tensorflow-serving":
        chosen = detect_format(payload) if isinstance(payload, dict) and "predictions" in payload else response_format
    else:
        chosen = response_format
    labels, dropped = top_labels(PARSERS[chosen](payload, class_names), max_labels)
    return chosen, labels, dropped


def top_labels(labels: Iterable[Label], limit: int | None) -> tuple[list[Label], int]:
    """The ``limit`` most confident labels, in the model's order, and how many others there were. Holds at most
    ``limit`` labels at a time, so a model that answers with a million boxes costs no more than ``limit``."""
    if limit is None:
        return list(labels), 0
    heap: list[tuple[float, int, Label]] = []  # the least confident kept label on top
    seen = 0
    for index, label in enumerate(labels):
        seen += 1
        entry = (label.confidence, -index, label)
        if len(heap) < limit:
            heapq.heappush(heap, entry)
        elif entry[:2] > heap[0][:2]:
            heapq.heapreplace(heap, entry)
    kept = [label for _, _, label in sorted(heap, key=lambda entry: -entry[1])]
    return kept, seen - len(kept)
