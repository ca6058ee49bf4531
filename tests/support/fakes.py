"""In-memory fakes of the model services, faithful to the contracts in ../shared/AWS_NOTES.md (beside the repository).

They record every request and answer like the service would: the Rekognition fake reads S3Object images
from the (moto) bucket and refuses what DetectCustomLabels refuses. They are fakes of the services, not of
the project's own code, so the real adapters run against them.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError
from PIL import Image, UnidentifiedImageError

REKOGNITION_MAX_BYTES = 4 * 1024 * 1024
REKOGNITION_MAX_S3_BYTES = 15 * 1024 * 1024


def client_error(code: str, message: str, operation: str, status: int = 400, **fields: Any) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"RequestId": f"req-{uuid.uuid4().hex[:8]}", "HTTPStatusCode": status},
        **fields,
    }
    return ClientError(response, operation)  # type: ignore[arg-type]


def custom_label(name: str, confidence: float, box: tuple[float, float, float, float] | None = None) -> dict[str, Any]:
    label: dict[str, Any] = {"Name": name, "Confidence": confidence}
    if box:
        left, top, width, height = box
        label["Geometry"] = {"BoundingBox": {"Left": left, "Top": top, "Width": width, "Height": height}}
    return label


class FakeRekognition:
    """DetectCustomLabels. ``labels(key)`` says what the model sees in an image; ``fail(key)`` may return
    an error code to raise instead."""

    def __init__(
        self,
        s3_client: Any,
        labels: Callable[[str], list[dict[str, Any]]] | None = None,
        fail: Callable[[str], str | None] | None = None,
    ) -> None:
        self.s3 = s3_client
        self.labels = labels or (lambda key: [custom_label("object", 90.0, (0.1, 0.2, 0.3, 0.4))])
        self.fail = fail or (lambda key: None)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def detect_custom_labels(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            self.requests.append(request)
        image = request["Image"]
        if "S3Object" in image:
            s3_object = image["S3Object"]
            name = s3_object["Name"]
            kwargs = {"Bucket": s3_object["Bucket"], "Key": name}
            if "Version" in s3_object:
                kwargs["VersionId"] = s3_object["Version"]
            try:
                data = self.s3.get_object(**kwargs)["Body"].read()
            except ClientError:
                raise client_error(
                    "InvalidS3ObjectException", "Unable to get object metadata from S3", "DetectCustomLabels"
                ) from None
            limit = REKOGNITION_MAX_S3_BYTES
        else:
            data = image["Bytes"]
            name = ""  # image bytes carry no key
            limit = REKOGNITION_MAX_BYTES
        if len(data) > limit:
            raise client_error("ImageTooLargeException", "Image size is too large", "DetectCustomLabels")
        try:
            with Image.open(io.BytesIO(data)) as picture:
                fmt = picture.format
                width, height = picture.size
                picture.load()
        except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
            raise client_error(
                "InvalidImageFormatException", "Request has invalid image format", "DetectCustomLabels"
            ) from None
        if fmt not in ("JPEG", "PNG"):
            raise client_error("InvalidImageFormatException", "Request has invalid image format", "DetectCustomLabels")
        if min(width, height) < 64 or max(width, height) > 4096:
            raise client_error("InvalidImageFormatException", "Image dimensions out of range", "DetectCustomLabels")
        key = name
        code = self.fail(key)
        if code:
            status = 500 if code in ("ThrottlingException", "InternalServerError") else 400
            raise client_error(code, f"injected {code}", "DetectCustomLabels", status)
        min_confidence = request.get("MinConfidence")
        labels = [
            label for label in self.labels(key) if min_confidence is None or label["Confidence"] >= min_confidence
        ]
        return {"CustomLabels": labels, "ResponseMetadata": {"RequestId": f"rk-{uuid.uuid4().hex[:8]}"}}


class FakeStreamingBody:
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, amount: int | None = None) -> bytes:
        return self._data.read(amount)


class FakeSageMakerRuntime:
    """InvokeEndpoint: answers ``respond(body, content_type)`` as JSON; a str answer is an error code."""

    def __init__(self, respond: Callable[[bytes, str], Any]) -> None:
        self.respond = respond
        self.requests: list[dict[str, Any]] = []

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        answer = self.respond(request["Body"], request["ContentType"])
        if isinstance(answer, ClientError):
            raise answer
        return {
            "Body": FakeStreamingBody(json.dumps(answer).encode()),
            "ContentType": "application/json",
            "ResponseMetadata": {"RequestId": f"sm-{uuid.uuid4().hex[:8]}"},
        }
