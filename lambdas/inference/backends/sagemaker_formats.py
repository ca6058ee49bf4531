"""Parsers for SageMaker endpoint responses, into the shared label shape (confidence 0-100, boxes as ratios).

Formats (``SAGEMAKER_RESPONSE_FORMAT``):
- ``image-classification`` (built-in algorithm): ``{"prediction": [p0, p1, ...]}``, one probability per class
  index; names come from ``SAGEMAKER_CLASS_NAMES``.
- ``object-detection`` (built-in algorithm): ``{"prediction": [[class, score, xmin, ymin, xmax, ymax], ...]}``
  with coordinates normalised to 0-1 and class indices as floats.
- ``tensorflow-serving`` (TF Object Detection API behind TF Serving): ``{"predictions": [{"detection_boxes":
  [[ymin, xmin, ymax, xmax], ...], "detection_classes": [...], "detection_scores": [...]}]}``.
- ``auto``: recognise one of the above by its shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .. import errors
from ..errors import TransientError
from ..model import BoundingBox, Label

FORMAT_SETTING = "SAGEMAKER_RESPONSE_FORMAT"


class ResponseFormatError(TransientError):
    """The endpoint's answer does not have the configured (or any known) shape. An operator must fix the
    setting or the model; the message is retried and then dead-lettered, so nothing is lost meanwhile."""

    def __init__(self, message: str) -> None:
        super().__init__(errors.RESPONSE_FORMAT_UNKNOWN, f"{message} (check {FORMAT_SETTING})")


def _class_name(index: Any, class_names: Mapping[int, str]) -> str:
    number = int(float(index))
    return class_names.get(number, f"class_{number}")


def _score(value: Any) -> float:
    return max(0.0, min(100.0, float(value) * 100.0))


def parse_image_classification(payload: Any, class_names: Mapping[int, str]) -> list[Label]:
    prediction = payload.get("prediction") if isinstance(payload, dict) else None
    if not isinstance(prediction, list) or not all(_is_number(p) for p in prediction):
        raise ResponseFormatError("expected image-classification output {'prediction': [p0, p1, ...]}")
    return [Label(name=_class_name(i, class_names), confidence=_score(p)) for i, p in enumerate(prediction)]


def parse_object_detection(payload: Any, class_names: Mapping[int, str]) -> list[Label]:
    prediction = payload.get("prediction") if isinstance(payload, dict) else None
    if not isinstance(prediction, list) or not all(
        isinstance(row, list) and len(row) == 6 and all(_is_number(v) for v in row) for row in prediction
    ):
        raise ResponseFormatError(
            "expected object-detection output {'prediction': [[class, score, xmin, ymin, xmax, ymax], ...]}"
        )
    return [
        _detected(class_index, score, (xmin, ymin, xmax, ymax), class_names)
        for class_index, score, xmin, ymin, xmax, ymax in prediction
        if class_index >= 0  # the built-in detector pads with class -1
    ]


def parse_tensorflow_serving(payload: Any, class_names: Mapping[int, str]) -> list[Label]:
    predictions = payload.get("predictions") if isinstance(payload, dict) else None
    if not isinstance(predictions, list) or not all(isinstance(p, dict) for p in predictions):
        raise ResponseFormatError("expected TensorFlow Serving output {'predictions': [{'detection_boxes': ...}]}")
    labels = []
    for prediction in predictions[:1]:  # one instance per request
        boxes = prediction.get("detection_boxes")
        classes = prediction.get("detection_classes")
        scores = prediction.get("detection_scores")
        if not (isinstance(boxes, list) and isinstance(classes, list) and isinstance(scores, list)):
            raise ResponseFormatError("TensorFlow Serving output lacks detection_boxes/classes/scores lists")
        count = int(prediction.get("num_detections", len(scores)))
        for (ymin, xmin, ymax, xmax), class_index, score in list(zip(boxes, classes, scores, strict=False))[:count]:
            labels.append(_detected(class_index, score, (xmin, ymin, xmax, ymax), class_names))
    return labels


def _detected(
    class_index: Any, score: Any, corners: tuple[float, float, float, float], class_names: Mapping[int, str]
) -> Label:
    """A detection from normalised (xmin, ymin, xmax, ymax) corners and a 0-1 score."""
    return Label(
        name=_class_name(class_index, class_names),
        confidence=_score(score),
        box=BoundingBox.from_corners(*corners),
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


PARSERS: dict[str, Callable[[Any, Mapping[int, str]], list[Label]]] = {
    "image-classification": parse_image_classification,
    "object-detection": parse_object_detection,
    "tensorflow-serving": parse_tensorflow_serving,
}


def detect_format(payload: Any) -> str:
    """Name the format of a response by its shape; raise ResponseFormatError when none fits."""
    if isinstance(payload, dict):
        if isinstance(payload.get("predictions"), list):
            return "tensorflow-serving"
        prediction = payload.get("prediction")
        if isinstance(prediction, list):
            if prediction and isinstance(prediction[0], list):
                return "object-detection"
            return "image-classification"
    keys = sorted(payload)[:5] if isinstance(payload, dict) else type(payload).__name__
    raise ResponseFormatError(f"unrecognised response shape ({keys}); set one of {', '.join(PARSERS)}")


def parse(payload: Any, response_format: str, class_names: Mapping[int, str]) -> tuple[str, list[Label]]:
    """(format used, labels)."""
    chosen = detect_format(payload) if response_format == "auto" else response_format
    return chosen, PARSERS[chosen](payload, class_names)
