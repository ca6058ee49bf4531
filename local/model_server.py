"""A local model endpoint on 127.0.0.1 that speaks two AWS APIs to the unchanged adapters:

- SageMaker runtime ``InvokeEndpoint`` (``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``): a container that refuses a
  request surfaces as ``ModelError`` (HTTP 424) carrying ``OriginalStatusCode``; an unknown endpoint as
  ``ValidationException``.
- Rekognition ``DetectCustomLabels`` (``AWS_ENDPOINT_URL_REKOGNITION``, JSON 1.1 protocol): reads
  ``Image.S3Object`` from the emulator's S3 or takes ``Image.Bytes``, refuses what Rekognition refuses
  (format, 64-4096 px, 4/15 MB) with its error codes, and answers ``CustomLabels`` with geometry.
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import demo_model

INVOCATIONS = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
Model = Callable[[bytes, str], Any]


class ServiceError(Exception):
    """Raised by a model to answer like the service itself would (throttling, model not ready)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


def demo(body: bytes, content_type: str) -> Any:
    return {"prediction": demo_model.detect(body)}


Fetch = Callable[[str, str, str | None], bytes]  # (bucket, key, version) -> object bytes


class RekognitionModel:
    """A Custom Labels model version: ``model(image bytes)`` gives detections in the demo model's rows."""

    def __init__(self, model_arn: str, fetch: Fetch, model: Callable[[bytes], list[list[float]]] | None = None):
        self.model_arn = model_arn
        self.fetch = fetch
        self.model = model or demo_model.detect

    def detect_custom_labels(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("ProjectVersionArn") != self.model_arn:
            raise ServiceError(400, "ResourceNotFoundException", "The model version does not exist")
        image = request.get("Image", {})
        if "S3Object" in image:
            s3_object = image["S3Object"]
            try:
                data = self.fetch(s3_object["Bucket"], s3_object["Name"], s3_object.get("Version"))
            except Exception:  # noqa: BLE001 - whatever S3 said, Rekognition reports it like this
                raise ServiceError(400, "InvalidS3ObjectException", "Unable to get object metadata from S3") from None
            limit = 15 * 1024 * 1024
        else:
            data = base64.b64decode(image.get("Bytes", ""))
            limit = 4 * 1024 * 1024
        if len(data) > limit:
            raise ServiceError(400, "ImageTooLargeException", "Image size is too large")
        _check_rekognition_image(data)
        minimum = float(request.get("MinConfidence", 0.0))
        labels = []
        for class_index, score, xmin, ymin, xmax, ymax in self.model(data):
            if score * 100 < minimum:
                continue
            box = {"Width": xmax - xmin, "Height": ymax - ymin, "Left": xmin, "Top": ymin}
            name = demo_model.CLASS_NAMES[int(class_index)]
            labels.append({"Name": name, "Confidence": score * 100, "Geometry": {"BoundingBox": box}})
        return {"CustomLabels": labels}


def _check_rekognition_image(data: bytes) -> None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            fmt, (width, height) = image.format, image.size
    except Exception:  # noqa: BLE001 - undecodable, truncated, decompression bomb: all the same answer
        raise ServiceError(400, "InvalidImageFormatException", "Request has invalid image format") from None
    if fmt not in ("JPEG", "PNG") or not (min(width, height) >= 64 and max(width, height) <= 4096):
        raise ServiceError(400, "InvalidImageFormatException", "Request has invalid image format")


class _Handler(BaseHTTPRequestHandler):
    server: _ModelServer

    def do_POST(self) -> None:
        match = INVOCATIONS.match(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        target = self.headers.get("X-Amz-Target", "")
        if target.startswith("RekognitionService."):
            self._rekognition(target.split(".", 1)[1], body)
            return
        if not match or match["name"] not in self.server.models:
            self._error(400, "ValidationException", f"Endpoint {match['name'] if match else self.path} not found.")
            return
        model = self.server.models[match["name"]]
        try:
            answer = model(body, self.headers.get("Content-Type", ""))
        except ServiceError as exc:
            self._error(exc.status, exc.code, exc.message)
            return
        except demo_model.NotAnImage as exc:
            self._model_error(400, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a crashing model is a 500 from the container
            self._model_error(500, f"model failed: {exc!r}")
            return
        self._send(200, json.dumps(answer).encode(), "application/json")

    def _rekognition(self, operation: str, body: bytes) -> None:
        model = self.server.rekognition
        try:
            if model is None or operation != "DetectCustomLabels":
                raise ServiceError(400, "UnknownOperationException", f"{operation} is not served here")
            answer = model.detect_custom_labels(json.loads(body or b"{}"))
        except ServiceError as exc:
            payload = json.dumps({"__type": exc.code, "message": exc.message}).encode()
            self._send(exc.status, payload, "application/x-amz-json-1.1")
            return
        self._send(200, json.dumps(answer).encode(), "application/x-amz-json-1.1")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", f"local-{threading.get_ident()}-{id(payload)}")
        self.end_headers()
        self.wfile.write(payload)

    def _model_error(self, original_status: int, message: str) -> None:
        self._error(
            424,
            "ModelError",
            f'Received client error ({original_status}) from primary with message "{message}"',
            OriginalStatusCode=original_status,
            OriginalMessage=message,
        )

    def _error(self, status: int, code: str, message: str, **fields: Any) -> None:
        payload = json.dumps({"message": message, **fields}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-ErrorType", code)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the demo prints its own progress


class _ModelServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, models: dict[str, Model], rekognition: RekognitionModel | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.models = models
        self.rekognition = rekognition


@contextmanager
def model_endpoint(models: dict[str, Model], rekognition: RekognitionModel | None = None) -> Iterator[str]:
    """Serve the models on a free port; yield the endpoint URL (for AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME and
    AWS_ENDPOINT_URL_REKOGNITION)."""
    server = _ModelServer(models, rekognition)
    thread = threading.Thread(target=server.serve_forever, name="model-server", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
