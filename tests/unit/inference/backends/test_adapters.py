"""The backend adapters' requests (checked with botocore's Stubber), their parsing of every response
format, and their translation of service errors into the project's error kinds."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from lambdas.contract import errors
from lambdas.contract.errors import PermanentError, TransientError
from lambdas.contract.thresholds import Thresholds
from lambdas.contract.values import BoundingBox, Label, ObjectRef
from lambdas.inference.backends.rekognition import RekognitionBackend
from lambdas.inference.backends.sagemaker import SageMakerBackend
from tests.support import pictures

ARN = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v.2024-01-01T00.00.00/1700000000000"
THRESHOLDS = Thresholds(60.0, {"rare": 20.0})


class Source:
    def __init__(self, key: str, data: bytes, version: str | None = "v7", size: int | None = None) -> None:
        self.ref = ObjectRef(
            bucket="bkt", key=key, version_id=version, etag="e", size=len(data) if size is None else size
        )
        self.data = data
        self.reads = 0
        self.head_reads = 0
        self.budget = None

    def read(self) -> bytes:
        self.reads += 1
        return self.data

    def read_head(self, length: int) -> bytes:
        self.head_reads += 1
        return self.data[:length]


def rekognition() -> tuple[RekognitionBackend, Stubber]:
    client = boto3.client("rekognition", region_name="us-east-1")
    return RekognitionBackend(ARN, client=client), Stubber(client)


def sagemaker(**options: Any) -> tuple[SageMakerBackend, Stubber]:
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    return SageMakerBackend("ep-1", client=client, **options), Stubber(client)


LABELS_RESPONSE = {
    "CustomLabels": [
        {
            "Name": "tulip",
            "Confidence": 93.25,
            "Geometry": {"BoundingBox": {"Width": 0.2, "Height": 0.3, "Left": 0.1, "Top": 0.05}},
        },
        {"Name": "garden", "Confidence": 71.0},
    ]
}


# --- Rekognition -----------------------------------------------------------------------------------------


def test_rekognition_sends_s3_object_with_version_and_reads_no_bytes():
    backend, stub = rekognition()
    source = Source("test_images/tulip.JPG", pictures.jpeg())
    stub.add_response(
        "detect_custom_labels",
        LABELS_RESPONSE,
        {
            "ProjectVersionArn": ARN,
            "Image": {"S3Object": {"Bucket": "bkt", "Name": "test_images/tulip.JPG", "Version": "v7"}},
            "MinConfidence": 19.0,
            "MaxResults": 1000,
        },
    )
    with stub:
        detection = backend.detect(source, THRESHOLDS)
    stub.assert_no_pending_responses()
    assert source.reads == 0  # only the header was read
    assert source.head_reads == 1
    assert detection.image.sent_as == "s3_object"
    assert (detection.image.format, detection.image.width, detection.image.height) == ("JPEG", 320, 240)
    assert detection.labels == (
        Label("tulip", 93.25, BoundingBox(left=0.1, top=0.05, width=0.2, height=0.3)),
        Label("garden", 71.0, None),
    )


def test_rekognition_omits_version_for_unversioned_objects():
    backend, stub = rekognition()
    stub.add_response(
        "detect_custom_labels",
        {"CustomLabels": []},
        {
            "ProjectVersionArn": ARN,
            "Image": {"S3Object": {"Bucket": "bkt", "Name": "k.png"}},
            "MinConfidence": 19.0,
            "MaxResults": 1000,
        },
    )
    with stub:
        assert backend.detect(Source("k.png", pictures.png(), version=None), THRESHOLDS).labels == ()


def test_rekognition_sends_converted_bytes_for_formats_it_cannot_read():
    backend, stub = rekognition()
    source = Source("a.webp", pictures.encode(pictures.picture(300, 200), "WEBP"))
    stub.add_response(
        "detect_custom_labels",
        {"CustomLabels": []},
        {"ProjectVersionArn": ARN, "Image": {"Bytes": ANY}, "MinConfidence": 19.0, "MaxResults": 1000},
    )
    with stub:
        detection = backend.detect(source, THRESHOLDS)
    assert source.reads == 1
    assert detection.image.sent_as == "bytes"
    assert detection.image.transformations == ("converted_WEBP_to_JPEG",)


def test_rekognition_falls_back_to_bytes_when_it_rejects_the_s3_object():
    backend, stub = rekognition()
    source = Source("odd.jpg", pictures.jpeg(300, 200))
    stub.add_client_error(
        "detect_custom_labels", "InvalidImageFormatException", "Request has invalid image format", http_status_code=400
    )
    bytes_request = {
        "ProjectVersionArn": ARN,
        "Image": {"Bytes": source.data},
        "MinConfidence": 19.0,
        "MaxResults": 1000,
    }
    stub.add_response("detect_custom_labels", LABELS_RESPONSE, bytes_request)
    with stub:
        detection = backend.detect(source, THRESHOLDS)
    stub.assert_no_pending_responses()
    assert detection.image.sent_as == "bytes"
    assert len(detection.labels) == 2


def test_rekognition_header_sends_oversized_images_as_downscaled_bytes_without_trying_s3_object():
    backend, stub = rekognition()
    source = Source("big.jpg", pictures.jpeg(5000, 1000))
    request = {"ProjectVersionArn": ARN, "Image": {"Bytes": ANY}, "MinConfidence": 19.0, "MaxResults": 1000}
    stub.add_response("detect_custom_labels", LABELS_RESPONSE, request)
    with stub:
        detection = backend.detect(source, THRESHOLDS)
    assert (source.head_reads, source.reads) == (1, 1)
    assert detection.image.sent_as == "bytes"
    assert (detection.image.width, detection.image.sent_width) == (5000, 4096)


def test_rekognition_header_applies_exif_orientation_on_the_bytes_path():
    backend, stub = rekognition()
    source = Source("phone.jpg", pictures.exif_rotated_jpeg(320, 200, orientation=6))
    request = {"ProjectVersionArn": ARN, "Image": {"Bytes": ANY}, "MinConfidence": 19.0, "MaxResults": 1000}
    stub.add_response("detect_custom_labels", {"CustomLabels": []}, request)
    with stub:
        detection = backend.detect(source, THRESHOLDS)
    assert "exif_orientation_6_applied" in detection.image.transformations
    assert (detection.image.sent_width, detection.image.sent_height) == (200, 320)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"plain text named .jpg\n", errors.IMAGE_UNREADABLE),
        (pictures.png(1, 1), errors.IMAGE_TOO_SMALL),
        (pictures.png_header_only(30000, 30000), errors.IMAGE_TOO_LARGE),
    ],
)
def test_rekognition_refuses_what_the_header_rules_out_without_calling_the_model(data, code):
    backend, stub = rekognition()
    with stub, pytest.raises(PermanentError) as raised:
        backend.detect(Source("x.png", data), THRESHOLDS)
    assert raised.value.code == code
    stub.assert_no_pending_responses()  # nothing was queued, and nothing was called


def test_rekognition_sends_bytes_directly_for_objects_over_15_mb():
    backend, stub = rekognition()
    source = Source("huge.jpg", pictures.jpeg(), size=16 * 1024 * 1024)
    stub.add_response(
        "detect_custom_labels",
        {"CustomLabels": []},
        {"ProjectVersionArn": ARN, "Image": {"Bytes": ANY}, "MinConfidence": 19.0, "MaxResults": 1000},
    )
    with stub:
        backend.detect(source, THRESHOLDS)
    assert source.reads == 1


@pytest.mark.parametrize(
    ("code", "status", "kind", "project_code"),
    [
        ("ThrottlingException", 500, TransientError, errors.BACKEND_THROTTLED),
        ("ProvisionedThroughputExceededException", 400, TransientError, errors.BACKEND_THROTTLED),
        ("LimitExceededException", 400, TransientError, errors.BACKEND_THROTTLED),
        ("ResourceNotReadyException", 400, TransientError, errors.MODEL_NOT_READY),
        ("InternalServerError", 500, TransientError, errors.BACKEND_UNAVAILABLE),
        ("AccessDeniedException", 400, TransientError, errors.BACKEND_MISCONFIGURED),
        ("ResourceNotFoundException", 400, TransientError, errors.BACKEND_MISCONFIGURED),
    ],
)
def test_rekognition_errors_become_project_error_kinds(code, status, kind, project_code):
    backend, stub = rekognition()
    stub.add_client_error("detect_custom_labels", code, "boom", http_status_code=status)
    with stub, pytest.raises(kind) as raised:
        backend.detect(Source("x.jpg", pictures.jpeg()), THRESHOLDS)
    assert raised.value.code == project_code
    assert code in raised.value.message or project_code == errors.MODEL_NOT_READY


def test_rekognition_rejecting_prepared_bytes_is_permanent_with_request_id():
    backend, stub = rekognition()
    stub.add_client_error(
        "detect_custom_labels",
        "InvalidImageFormatException",
        "bad",
        http_status_code=400,
        response_meta={"RequestId": "req-42"},
    )
    with stub, pytest.raises(PermanentError) as raised:
        backend.detect(Source("x.webp", pictures.encode(pictures.picture(), "WEBP")), THRESHOLDS)
    assert raised.value.code == errors.BACKEND_REJECTED_IMAGE
    assert raised.value.request_id == "req-42"


# --- SageMaker -------------------------------------------------------------------------------------------


def body(payload: Any) -> StreamingBody:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_sagemaker_request_shape_and_image_classification_with_class_names():
    backend, stub = sagemaker(class_names={0: "daisy", 1: "rose"}, response_format="image-classification")
    data = pictures.jpeg(400, 300)
    stub.add_response(
        "invoke_endpoint",
        {"Body": body({"prediction": [0.1, 0.85, 0.05]}), "ContentType": "application/json"},
        {"EndpointName": "ep-1", "ContentType": "image/jpeg", "Accept": "application/json", "Body": data},
    )
    with stub:
        detection = backend.detect(Source("a.jpg", data), THRESHOLDS)
    assert [(label.name, round(label.confidence, 6), label.box) for label in detection.labels] == [
        ("daisy", 10.0, None),
        ("rose", 85.0, None),
        ("class_2", 5.0, None),
    ]
    assert detection.raw_format == "image-classification"


def test_sagemaker_object_detection_output():
    backend, stub = sagemaker(class_names={4: "car"})
    stub.add_response(
        "invoke_endpoint",
        {"Body": body({"prediction": [[4.0, 0.9, 0.1, 0.2, 0.4, 0.8], [-1.0, 0.0, 0, 0, 0, 0]]})},
        {"EndpointName": "ep-1", "ContentType": "image/jpeg", "Accept": "application/json", "Body": ANY},
    )
    with stub:
        detection = backend.detect(Source("a.jpg", pictures.jpeg()), THRESHOLDS)
    (car,) = detection.labels
    assert car.name == "car"
    assert car.confidence == pytest.approx(90.0)
    assert car.box is not None
    assert (car.box.left, car.box.top) == (0.1, 0.2)
    assert (car.box.width, car.box.height) == pytest.approx((0.3, 0.6))
    assert detection.raw_format == "object-detection"


def test_sagemaker_tensorflow_serving_output_with_json_request():
    backend, stub = sagemaker(content_type="application/json", class_names={1: "person"})
    data = pictures.jpeg()
    expected_body = json.dumps({"instances": [{"b64": base64.b64encode(data).decode()}]}).encode()
    stub.add_response(
        "invoke_endpoint",
        {
            "Body": body(
                {
                    "predictions": [
                        {
                            "detection_boxes": [[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]],
                            "detection_classes": [1.0, 7.0],
                            "detection_scores": [0.75, 0.05],
                            "num_detections": 2,
                        }
                    ]
                }
            )
        },
        {
            "EndpointName": "ep-1",
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": expected_body,
        },
    )
    with stub:
        detection = backend.detect(Source("a.jpg", data), THRESHOLDS)
    person, other = detection.labels
    assert (person.name, other.name) == ("person", "class_7")
    assert person.box is not None
    # TF boxes are [ymin, xmin, ymax, xmax]
    assert (person.box.left, person.box.top) == (0.2, 0.1)
    assert (person.box.width, person.box.height) == pytest.approx((0.4, 0.4))
    assert detection.raw_format == "tensorflow-serving-detection"


def test_sagemaker_converts_what_the_content_type_does_not_cover():
    backend, stub = sagemaker()
    stub.add_response(
        "invoke_endpoint",
        {"Body": body({"prediction": []})},
        {"EndpointName": "ep-1", "ContentType": "image/jpeg", "Accept": "application/json", "Body": ANY},
    )
    with stub:
        detection = backend.detect(Source("a.png", pictures.png()), THRESHOLDS)
    assert detection.image.transformations[0] == "converted_PNG_to_JPEG"


@pytest.mark.parametrize(
    ("payload", "configured", "shape"),
    [
        ({"scores": [0.1]}, "auto", "a JSON object with keys scores"),
        (b"<html>oops</html>", "auto", "not JSON: b'<html>oops</html>'"),
        ({"prediction": [0.2, 0.8]}, "object-detection", "a JSON object with keys prediction"),
        ({"prediction": [[1, 0.5, 0, 0, 1, 1]]}, "tensorflow-serving", "a JSON object with keys prediction"),
        ([], "auto", "a JSON list of 0 items"),
        ("just text", "auto", "a JSON str"),
    ],
)
def test_sagemaker_unknown_response_shapes_are_one_error_document_naming_the_shape(payload, configured, shape):
    # Retrying cannot change the answer to the same image: one billed call, an error document, an alarm.
    backend, stub = sagemaker(response_format=configured)
    stub.add_response("invoke_endpoint", {"Body": body(payload)})
    with stub, pytest.raises(PermanentError) as raised:
        backend.detect(Source("a.jpg", pictures.jpeg()), THRESHOLDS)
    assert raised.value.code == errors.RESPONSE_FORMAT_UNKNOWN
    assert "SAGEMAKER_RESPONSE_FORMAT" in raised.value.message
    assert shape in raised.value.message


@pytest.mark.parametrize(
    ("code", "fields", "kind", "project_code"),
    [
        ("ModelError", {"OriginalStatusCode": 400}, PermanentError, errors.BACKEND_REJECTED_IMAGE),
        ("ModelError", {"OriginalStatusCode": 415}, PermanentError, errors.BACKEND_REJECTED_IMAGE),
        ("ModelError", {"OriginalStatusCode": 408}, TransientError, errors.BACKEND_TIMEOUT),
        ("ModelError", {"OriginalStatusCode": 429}, TransientError, errors.BACKEND_THROTTLED),
        ("ModelError", {"OriginalStatusCode": 500}, TransientError, errors.BACKEND_UNAVAILABLE),
        ("ModelError", {"OriginalStatusCode": 503}, TransientError, errors.BACKEND_UNAVAILABLE),
        ("ModelNotReadyException", {}, TransientError, errors.MODEL_NOT_READY),
        ("ThrottlingException", {}, TransientError, errors.BACKEND_THROTTLED),
        ("ServiceUnavailable", {}, TransientError, errors.BACKEND_UNAVAILABLE),
        ("ValidationException", {}, TransientError, errors.BACKEND_MISCONFIGURED),
    ],
)
def test_sagemaker_errors_become_project_error_kinds(code, fields, kind, project_code):
    backend, stub = sagemaker()
    status = 503 if code == "ServiceUnavailable" else 424 if code == "ModelError" else 400
    stub.add_client_error("invoke_endpoint", code, "failed", http_status_code=status, modeled_fields=fields)
    with stub, pytest.raises(kind) as raised:
        backend.detect(Source("a.jpg", pictures.jpeg()), THRESHOLDS)
    assert raised.value.code == project_code


# --- responses AWS documents (tests/fixtures) ---------------------------------------------------------------


def test_rekognition_parses_the_developer_guides_response():
    from tests.support.fixtures import load

    backend, stub = rekognition()
    stub.add_response("detect_custom_labels", load("responses/rekognition_detect_custom_labels.json"))
    with stub:
        (label,) = backend.detect(Source("logo.jpg", pictures.jpeg()), THRESHOLDS).labels
    assert label.name == "MyLogo"
    assert label.confidence == pytest.approx(77.7729721069336)
    assert label.box == BoundingBox(
        left=0.07924537360668182, top=0.4037395715713501, width=0.198987677693367, height=0.31296101212501526
    )


def test_sagemaker_parses_the_object_detection_docs_response_under_auto():
    from tests.support.fixtures import load

    names = {0: "car", 3: "dog", 4: "person", 8: "tree"}
    backend, stub = sagemaker(class_names=names)
    stub.add_response("invoke_endpoint", {"Body": body(load("responses/sagemaker_object_detection_docs.json"))})
    with stub:
        detection = backend.detect(Source("street.jpg", pictures.jpeg()), THRESHOLDS)
    assert detection.raw_format == "object-detection"
    assert [(label.name, round(label.confidence, 2)) for label in detection.labels] == [
        ("person", 86.42),
        ("car", 73.38),
        ("person", 32.64),
        ("tree", 22.55),
        ("dog", 42.26),
    ]
    first = detection.labels[0].box
    assert first is not None
    assert (first.left, first.top) == pytest.approx((0.3088374733924866, 0.07030484080314636))
    assert (first.width, first.height) == pytest.approx(
        (0.7110607028007507 - 0.3088374733924866, 0.9345266819000244 - 0.07030484080314636)
    )
