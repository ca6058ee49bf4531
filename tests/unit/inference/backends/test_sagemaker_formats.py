"""Every documented response shape of the endpoints users deploy, told apart under ``auto``, and scores that
never become confidences unless they are finite probabilities."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from lambdas.contract import errors
from lambdas.contract.errors import PermanentError
from lambdas.inference.backends import sagemaker_formats
from lambdas.inference.backends.rekognition import parse_custom_labels
from tests.support.fixtures import load

CALTECH = dict(enumerate(load("responses/caltech257_class_names.json")))


def parsed(
    payload: object, response_format: str = "auto", names: dict[int, str] | None = None
) -> tuple[str, list[Any]]:
    used, labels, dropped = sagemaker_formats.parse(payload, response_format, names or {})
    assert dropped == 0
    return used, labels


def test_the_built_in_classifiers_bare_list_is_image_classification():
    used, labels = parsed(load("responses/sagemaker_image_classification_bare_list.json"), names=CALTECH)
    assert used == "image-classification"
    assert len(labels) == 257
    best = max(labels, key=lambda label: label.confidence)
    assert (best.name, best.confidence) == ("bathtub", pytest.approx(99.9952))
    assert all(label.box is None for label in labels)


def test_the_json_lines_classification_form():
    used, labels = parsed(load("responses/sagemaker_image_classification_jsonlines.json"), names={2: "rose"})
    assert used == "image-classification"
    assert [(label.name, round(label.confidence, 2)) for label in labels] == [
        ("class_0", 0.33),
        ("class_1", 1.01),
        ("rose", 97.11),
        ("class_3", 1.55),
    ]


def test_tensorflow_serving_classification():
    used, labels = parsed(load("responses/tensorflow_serving_classification.json"), names={1: "dog"})
    assert used == "tensorflow-serving-classification"
    assert [(label.name, round(label.confidence, 2)) for label in labels] == [
        ("class_0", 2.0),
        ("dog", 91.0),
        ("class_2", 7.0),
    ]


def test_tensorflow_serving_detection_honours_num_detections():
    used, labels = parsed(load("responses/tensorflow_serving_detection.json"), names={1: "person", 18: "dog"})
    assert used == "tensorflow-serving-detection"
    assert [(label.name, round(label.confidence, 6)) for label in labels] == [("person", 83.0), ("dog", 57.0)]
    person = labels[0].box
    assert person is not None
    assert (person.left, person.top, person.width, person.height) == pytest.approx((0.2, 0.1, 0.4, 0.4))


def test_the_docs_object_detection_sample():
    used, labels = parsed(load("responses/sagemaker_object_detection_docs.json"), names={4: "person"})
    assert used == "object-detection"
    assert len(labels) == 5
    assert labels[0].name == "person"


def test_a_detector_that_found_nothing_is_object_detection_not_classification():
    used, labels = parsed(load("responses/sagemaker_object_detection_empty.json"))
    assert (used, labels) == ("object-detection", [])


@pytest.mark.parametrize(
    "response_format",
    ["image-classification", "object-detection", "tensorflow-serving-classification", "tensorflow-serving-detection"],
)
def test_each_format_can_be_chosen_explicitly(response_format):
    samples = {
        "image-classification": "responses/sagemaker_image_classification_bare_list.json",
        "object-detection": "responses/sagemaker_object_detection_docs.json",
        "tensorflow-serving-classification": "responses/tensorflow_serving_classification.json",
        "tensorflow-serving-detection": "responses/tensorflow_serving_detection.json",
    }
    used, labels = parsed(load(samples[response_format]), response_format)
    assert used == response_format
    assert labels


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b'{"prediction": [0.1, NaN, 0.3]}', "NaN"),
        (b"[0.1, Infinity]", "Infinity"),
        (b'{"prediction": [[1.0, -Infinity, 0, 0, 1, 1]]}', "-Infinity"),
    ],
)
def test_non_finite_numbers_are_refused_at_parse_time(raw, where):
    with pytest.raises(PermanentError) as raised:
        sagemaker_formats.loads(raw)
    assert raised.value.code == errors.MODEL_OUTPUT_INVALID
    assert where in raised.value.message


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ([0.2, 1.7], "response[1] is 1.7"),
        ({"prediction": [0.5, -0.2]}, "prediction[1] is -0.2"),
        ({"prediction": [[2.0, 3.5, 0.1, 0.1, 0.5, 0.5]]}, "prediction[0] score is 3.5"),
        ({"prediction": [[2.5, 0.5, 0.1, 0.1, 0.5, 0.5]]}, "class indices must be whole numbers"),
        ({"predictions": [[0.5, 95.0]]}, "predictions[0][1] is 95.0"),
        ({"prediction": [[1.0, True, 0.1, 0.1, 0.5, 0.5]]}, "score is True"),
    ],
)
def test_scores_out_of_range_never_become_confidences(payload, fragment):
    with pytest.raises(PermanentError) as raised:
        parsed(payload)
    assert raised.value.code == errors.MODEL_OUTPUT_INVALID
    assert fragment in raised.value.message


def test_float_noise_above_one_is_still_a_probability():
    (label,) = parsed([1.0000004])[1]
    assert label.confidence == 100.0


@pytest.mark.parametrize("confidence", [101.0, -1.0, math.nan, math.inf, "97"])
def test_rekognition_confidences_outside_0_to_100_are_refused(confidence):
    with pytest.raises(PermanentError) as raised:
        parse_custom_labels({"CustomLabels": [{"Name": "x", "Confidence": confidence}]})
    assert raised.value.code == errors.MODEL_OUTPUT_INVALID


def test_the_unrecognised_shape_is_described():
    with pytest.raises(PermanentError) as raised:
        parsed(json.loads('{"outputs": [1], "model_version": "3"}'))
    assert raised.value.code == errors.RESPONSE_FORMAT_UNKNOWN
    assert "a JSON object with keys model_version, outputs" in raised.value.message
