"""Rekognition Custom Labels on the local services server (JSON 1.1 protocol): DetectCustomLabels answered by a
local model, and the control plane (DescribeProjects, DescribeProjectVersions, Start/StopProjectVersion) of
emulated model versions. The unchanged adapter reaches it through ``AWS_ENDPOINT_URL_REKOGNITION``."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from inferctl.emulator.models.base import (
    STAND_IN_ID,
    Emulation,
    HttpRequest,
    HttpResponse,
    ModelDirectory,
    ModelFault,
    Prediction,
    json_response,
)
from lambdas.contract.backends.rekognition import version_parts
from lambdas.inference import images

_TARGET_PREFIX = "RekognitionService."
_FAULT_CODES = {
    "throttled": (400, "ProvisionedThroughputExceededException"),
    "not_ready": (400, "ResourceNotReadyException"),
    "rejected": (400, "InvalidImageFormatException"),
    "internal": (500, "InternalServerError"),
}
_JSON = "application/x-amz-json-1.1"


def _error(status: int, code: str, message: str) -> HttpResponse:
    return json_response(status, {"__type": code, "message": message}, _JSON)


_OPERATIONS = (
    "DetectCustomLabels",
    "DescribeProjects",
    "DescribeProjectVersions",
    "StartProjectVersion",
    "StopProjectVersion",
)
_EMULATED_PROJECT_TIMESTAMP = "1700000000000"


def _handles(request: HttpRequest) -> bool:
    target = request.headers.get("X-Amz-Target", "")
    return target.startswith(_TARGET_PREFIX) and target[len(_TARGET_PREFIX) :] in _OPERATIONS


def _serve(request: HttpRequest, models: ModelDirectory) -> HttpResponse:
    operation = request.headers.get("X-Amz-Target", "")[len(_TARGET_PREFIX) :]
    payload = json.loads(request.body or b"{}")
    if operation == "DetectCustomLabels":
        return _detect(payload, models)
    return _lifecycle(operation, payload, models)


def _lifecycle(operation: str, payload: dict[str, Any], models: ModelDirectory) -> HttpResponse:
    """The control plane of the emulated model versions: each model id that is a version ARN is a version of
    its project; a model without an emulated lifecycle is always RUNNING."""
    versions = {arn: version_parts(arn) for arn in models.model_ids() if arn.startswith("arn:aws:rekognition:")}
    if operation == "DescribeProjects":
        names = set(payload.get("ProjectNames") or {project for project, _ in versions.values()})
        projects = sorted({project for project, _ in versions.values()} & names)
        return json_response(
            200,
            {
                "ProjectDescriptions": [
                    {"ProjectArn": _project_arn(project), "Status": "CREATED", "CreationTimestamp": 1700000000.0}
                    for project in projects
                ]
            },
            _JSON,
        )
    if operation == "DescribeProjectVersions":
        wanted = set(payload.get("VersionNames") or [])
        found = []
        for arn, (project, version) in sorted(versions.items()):
            if _project_arn(project) != payload.get("ProjectArn") or (wanted and version not in wanted):
                continue
            lifecycle = models.lifecycle(arn)
            status = lifecycle.status if lifecycle else "RUNNING"
            description: dict[str, Any] = {"ProjectVersionArn": arn, "Status": status, "StatusMessage": status}
            if status in ("RUNNING", "STARTING"):
                description["MinInferenceUnits"] = lifecycle.units if lifecycle else 1
            found.append(description)
        return json_response(200, {"ProjectVersionDescriptions": found}, _JSON)
    arn = str(payload.get("ProjectVersionArn", ""))
    if arn not in versions:
        return _error(400, "ResourceNotFoundException", "The model version does not exist")
    lifecycle = models.lifecycle(arn)
    if lifecycle is None:
        return _error(400, "ResourceInUseException", "The model is RUNNING")
    refused = (
        lifecycle.start(int(payload.get("MinInferenceUnits", 1)))
        if operation == "StartProjectVersion"
        else (lifecycle.stop())
    )
    if refused:
        return _error(400, "ResourceInUseException", refused)
    return json_response(200, {"Status": lifecycle.status}, _JSON)


def _project_arn(project: str) -> str:
    return f"arn:aws:rekognition:us-east-1:123456789012:project/{project}/{_EMULATED_PROJECT_TIMESTAMP}"


def _detect(payload: dict[str, Any], models: ModelDirectory) -> HttpResponse:
    """DetectCustomLabels as the service answers it: reads ``S3Object`` images from the emulator's S3, refuses
    what Rekognition refuses (format, 64-4096 px, 4/15 MB), answers ``CustomLabels`` with geometry."""
    model_arn = str(payload.get("ProjectVersionArn", ""))
    model = models.model(model_arn)
    if model is None:
        return _error(400, "ResourceNotFoundException", "The model version does not exist")
    lifecycle = models.lifecycle(model_arn)
    if lifecycle is not None and lifecycle.status != "RUNNING":
        return _error(400, "ResourceNotReadyException", f"The model is {lifecycle.status}, not RUNNING")
    image = payload.get("Image", {})
    if "S3Object" in image:
        s3_object = image["S3Object"]
        try:
            data = models.fetch(s3_object["Bucket"], s3_object["Name"], s3_object.get("Version"))
        except Exception:  # noqa: BLE001 - whatever S3 said, Rekognition reports it like this
            return _error(400, "InvalidS3ObjectException", "Unable to get object metadata from S3")
        limit = images.REKOGNITION_S3_OBJECT.max_bytes
    else:
        data = base64.b64decode(image.get("Bytes", ""))
        limit = images.REKOGNITION_BYTES.max_bytes
    if len(data) > limit:
        return _error(400, "ImageTooLargeException", "Image size is too large")
    if not _acceptable_image(data):
        return _error(400, "InvalidImageFormatException", "Request has invalid image format")
    try:
        predictions: Sequence[Prediction] = model(data, "")
    except ModelFault as fault:
        status, code = _FAULT_CODES[fault.kind]
        return _error(status, code, fault.message)
    minimum = float(payload.get("MinConfidence", 0.0))
    labels = []
    for prediction in predictions:
        if prediction.score * 100 < minimum:
            continue
        label: dict[str, Any] = {"Name": prediction.name, "Confidence": prediction.score * 100}
        if prediction.corners:
            xmin, ymin, xmax, ymax = prediction.corners
            box = {"Width": xmax - xmin, "Height": ymax - ymin, "Left": xmin, "Top": ymin}
            label["Geometry"] = {"BoundingBox": box}
        labels.append(label)
    return json_response(200, {"CustomLabels": labels}, _JSON)


def _acceptable_image(data: bytes) -> bool:
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            fmt, (width, height) = image.format, image.size
    except Exception:  # noqa: BLE001 - undecodable, truncated, decompression bomb: all the same answer
        return False
    return fmt in ("JPEG", "PNG") and min(width, height) >= 64 and max(width, height) <= 4096


def model_arn(name: str) -> str:
    """The project version ARN a local model is served under."""
    return (
        f"arn:aws:rekognition:us-east-1:123456789012:project/image-inference/version/{name}.2026-11-23T00.00.00"
        "/1795392000000"
    )


STAND_IN_ARN = model_arn(STAND_IN_ID)


EMULATION = Emulation(
    endpoint_variable="AWS_ENDPOINT_URL_REKOGNITION",
    handles=_handles,
    serve=_serve,
    demo_context=lambda model_id, classes: {"backend": "rekognition", "rekognitionModelArn": model_id},
    model_id=model_arn,
)
