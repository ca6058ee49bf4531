"""Real endpoints' answers and hostile files, end to end through the handler under moto: what AWS's docs and
examples say endpoints answer becomes the right labels; what no model should answer, and files Pillow
chokes on, become error documents after one model call at most, never dead letters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from inferctl.emulator.resources import Resources, provision
from lambdas.inference.backends.rekognition import RekognitionBackend
from lambdas.inference.backends.sagemaker import SageMakerBackend
from stacks.config import StackConfig
from tests.integration.inference.harness import MODEL_ARN, deliver, install_runtime, read_json, settings_env
from tests.support import pictures
from tests.support.fakes import FakeRekognition, FakeSageMakerRuntime
from tests.support.fixtures import FIXTURES, load

CALTECH = load("responses/caltech257_class_names.json")


@pytest.fixture
def aws() -> Iterator[tuple[Any, Resources]]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        resources = provision(session, StackConfig.from_cdk_json(), name="responses")
        yield session, resources


def run_sagemaker(session: Any, resources: Resources, monkeypatch: Any, answer: Any, names: list[str]) -> Any:
    """Upload one image, answer with ``answer`` (a payload, or raw bytes), deliver; the fake's requests."""
    raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()

    class Raw(FakeSageMakerRuntime):
        def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
            self.requests.append(request)
            from tests.support.fakes import FakeStreamingBody

            return {"Body": FakeStreamingBody(raw), "ResponseMetadata": {"RequestId": "sm-1"}}

    fake = Raw(lambda body, content_type: None)
    backend = SageMakerBackend("ep", class_names=dict(enumerate(names)), client=fake)
    env = settings_env(resources, BACKEND="sagemaker", SAGEMAKER_ENDPOINT_NAME="ep")
    install_runtime(monkeypatch, session, env, backend)
    deliver(session, resources)  # the S3 test event
    session.client("s3").put_object(Bucket=resources.bucket, Key="test_images/photo.jpg", Body=pictures.jpeg())
    delivery = deliver(session, resources)
    assert delivery.failed_ids == []  # every outcome here is final: nothing goes back to SQS
    return fake


CASES = {
    "bare list (built-in classifier)": ("sagemaker_image_classification_bare_list.json", CALTECH, "bathtub", 99.9952),
    "JSON lines classifier": ("sagemaker_image_classification_jsonlines.json", ["a", "b", "rose", "d"], "rose", 97.11),
    "TF Serving classifier": ("tensorflow_serving_classification.json", ["cat", "dog", "bird"], "dog", 91.0),
    "docs detection": ("sagemaker_object_detection_docs.json", [f"c{i}" for i in range(9)], "c4", 86.4195),
    "TF Serving detection": ("tensorflow_serving_detection.json", [f"c{i}" for i in range(20)], "c1", 83.0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_documented_shape_becomes_labels_under_auto(aws, monkeypatch, case):
    session, resources = aws
    fixture, names, best, confidence = CASES[case]
    fake = run_sagemaker(session, resources, monkeypatch, load(f"responses/{fixture}"), names)

    document = read_json(session, resources.bucket, "test_images/photo.jpg.json")
    assert document["status"] == "ok"
    assert len(fake.requests) == 1
    top = document["labels"][0]
    assert (top["name"], round(top["confidence"], 4)) == (best, confidence)
    detector = "detection" in case
    assert (top["bounding_box"] is not None) == detector
    if detector:
        assert all(0 <= value <= 1 for value in top["bounding_box"].values())


def test_an_empty_detection_is_an_object_detection_result(aws, monkeypatch):
    session, resources = aws
    run_sagemaker(session, resources, monkeypatch, load("responses/sagemaker_object_detection_empty.json"), [])
    document = read_json(session, resources.bucket, "test_images/photo.jpg.json")
    assert (document["status"], document["labels"], document["model"]["response_format"]) == (
        "ok",
        [],
        "object-detection",
    )


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"prediction": [0.1, NaN, 0.9]}', "MODEL_OUTPUT_INVALID"),
        (b"[0.2, Infinity]", "MODEL_OUTPUT_INVALID"),
        (b'{"prediction": [[1.0, 1.4, 0.1, 0.1, 0.6, 0.6]]}', "MODEL_OUTPUT_INVALID"),
        (b'{"outputs": [[0.1, 0.9]]}', "RESPONSE_FORMAT_UNKNOWN"),
        (b"<html>502 Bad Gateway</html>", "RESPONSE_FORMAT_UNKNOWN"),
    ],
)
def test_unusable_answers_are_one_billed_call_and_an_error_document(aws, monkeypatch, raw, code):
    session, resources = aws
    fake = run_sagemaker(session, resources, monkeypatch, raw, ["a", "b"])
    document = read_json(session, resources.bucket, "test_images/photo.jpg.json")
    assert (document["status"], document["error"]["code"], document["labels"]) == ("error", code, [])
    assert len(fake.requests) == 1  # not five: the message was acknowledged


@pytest.mark.parametrize("backend", ["sagemaker", "rekognition"])
@pytest.mark.parametrize("name", ["scan.tif", "scan-renamed.jpg"])
def test_a_truncated_multipage_tiff_ends_in_an_error_document_not_the_dlq(aws, monkeypatch, backend, name):
    session, resources = aws
    s3 = session.client("s3")
    if backend == "rekognition":
        model: Any = RekognitionBackend(MODEL_ARN, client=FakeRekognition(s3))
        env = settings_env(resources)
    else:
        model = SageMakerBackend("ep", client=FakeSageMakerRuntime(lambda body, content_type: {"prediction": []}))
        env = settings_env(resources, BACKEND="sagemaker", SAGEMAKER_ENDPOINT_NAME="ep")
    install_runtime(monkeypatch, session, env, model)
    deliver(session, resources)
    data = pictures.multipage_tiff()
    s3.put_object(Bucket=resources.bucket, Key=f"test_images/{name}", Body=data[: len(data) // 2])

    assert deliver(session, resources).failed_ids == []

    document = read_json(session, resources.bucket, f"test_images/{name}.json")
    assert document["status"] == "error"
    assert document["error"]["code"] == "IMAGE_UNREADABLE"
    assert "Missing dimensions" in document["error"]["message"]


def test_fixture_folder_is_where_the_loader_looks():
    assert (FIXTURES / "responses" / "caltech257_class_names.json").is_file()
