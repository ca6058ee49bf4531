"""Amazon Rekognition Custom Labels: DetectCustomLabels on a model version ARN.

The image goes by reference (``Image.S3Object``) whenever it might qualify, so no image bytes pass through
the Lambda. When Rekognition cannot take the object as it is (another format, too large, too many pixels),
the image is read, converted or downscaled with Pillow, and sent as ``Image.Bytes`` within the limits.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from lambdas.contract import errors
from lambdas.contract.backends.rekognition import RekognitionSettings
from lambdas.contract.errors import PermanentError, ProcessingError, TransientError
from lambdas.contract.values import BoundingBox, Detection, ImageFacts, Label, ObjectRef
from lambdas.inference import images
from lambdas.inference.backends.base import ClientOptions, client_config, translate_client_error
from lambdas.inference.images import ImageSource

if TYPE_CHECKING:
    from mypy_boto3_rekognition import RekognitionClient

    from lambdas.contract.thresholds import Thresholds

SERVICE = "Rekognition"
S3_OBJECT_MAX_BYTES = images.REKOGNITION_S3_OBJECT.max_bytes
S3_OBJECT_SUFFIXES = (".jpg", ".jpeg", ".png")
# Codes that mean "not like this": the S3Object attempt falls back to sending prepared bytes.
IMAGE_REJECTION_CODES = frozenset(
    {"InvalidImageFormatException", "ImageTooLargeException", "InvalidS3ObjectException", "InvalidParameterException"}
)


class RekognitionBackend:
    name = "rekognition"

    def __init__(
        self, model_arn: str, client: RekognitionClient | Any | None = None, options: ClientOptions | None = None
    ) -> None:
        self.model_id = model_arn
        options = options or ClientOptions()
        if client is None:
            import boto3

            client = boto3.client("rekognition", config=client_config(options))
        self._client: Any = options.attach(client)  # a boto3 client, or a fake with the same method
        self._calls = options.calls()
        self._max_labels = options.max_labels

    def needs_bytes(self, ref: ObjectRef) -> bool:
        # By reference when it might qualify: only the header is read, and Rekognition reads the object itself.
        return not self._s3_object_may_qualify(ref.key, ref.size)

    def detect(self, image: ImageSource, thresholds: Thresholds) -> Detection:
        ref = image.ref
        if self._s3_object_may_qualify(ref.key, ref.size):
            # The header only (at most 64 KB, no pixels): format, size, EXIF orientation. It settles what
            # Rekognition could take by reference, and refuses non-images before a billed call.
            head = image.read_head(images.HEADER_BYTES)
            header = images.read_header(head, complete=len(head) < images.HEADER_BYTES)
            limits = images.REKOGNITION_S3_OBJECT
            if header is None or images.fits_as_is(header, limits, ref.size):
                s3_object: dict[str, str] = {"Bucket": ref.bucket, "Name": ref.key}
                if ref.version_id:
                    s3_object["Version"] = ref.version_id
                facts = ImageFacts(
                    sent_as="s3_object",
                    format=header.format if header else None,
                    width=header.width if header else None,
                    height=header.height if header else None,
                    sent_width=header.width if header else None,
                    sent_height=header.height if header else None,
                )
                try:
                    return self._call({"S3Object": s3_object}, thresholds, facts)
                except _ImageRejected:
                    pass  # fall through to the bytes path: Pillow decides what the image really is
        prepared = images.prepare_source(image, images.REKOGNITION_BYTES, verify=True)
        try:
            return self._call({"Bytes": prepared.data}, thresholds, prepared.facts)
        except _ImageRejected as rejected:
            raise PermanentError(
                errors.BACKEND_REJECTED_IMAGE, rejected.detail, request_id=rejected.request_id
            ) from None

    @staticmethod
    def _s3_object_may_qualify(key: str, size: int | None) -> bool:
        return key.lower().endswith(S3_OBJECT_SUFFIXES) and (size is None or 0 < size <= S3_OBJECT_MAX_BYTES)

    def _call(self, image: dict[str, Any], thresholds: Thresholds, facts: ImageFacts) -> Detection:
        # Ask for a little below the lowest threshold or the candidate floor (the price is per image, not per
        # label): the docs disagree on whether the service's boundary is inclusive, and ours is; the exact
        # cuts are made in the Lambda.
        min_confidence = max(0.0, thresholds.lowest() - 1.0)
        started = time.perf_counter()
        try:
            # MaxResults: the service keeps the most confident (highest first), so the answer is bounded too.
            response = self._calls.run(
                lambda: self._client.detect_custom_labels(
                    ProjectVersionArn=self.model_id,
                    Image=image,
                    MinConfidence=min_confidence,
                    MaxResults=self._max_labels,
                ),
                SERVICE,
            )
        except Exception as exc:  # noqa: BLE001 - every failure is translated into the project's kinds
            raise self._translate(exc) from None
        latency_ms = (time.perf_counter() - started) * 1000
        return Detection(
            labels=tuple(parse_custom_labels(response)),
            image=facts,
            latency_ms=latency_ms,
            request_id=response.get("ResponseMetadata", {}).get("RequestId"),
        )

    @staticmethod
    def _translate(exc: Exception) -> Exception:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            request_id = exc.response.get("ResponseMetadata", {}).get("RequestId")
            message = exc.response.get("Error", {}).get("Message", "")
            if code in IMAGE_REJECTION_CODES:
                return _ImageRejected(f"{SERVICE} {code}: {message}".rstrip(": "), request_id)
            if code == "ResourceNotReadyException":
                return TransientError(
                    errors.MODEL_NOT_READY,
                    f"{SERVICE} model is not running ({message}); start it with StartProjectVersion",
                    request_id=request_id,
                )
        return translate_client_error(exc, SERVICE)


class _ImageRejected(ProcessingError):
    """Rekognition refused the image itself (format, size, dimensions)."""

    def __init__(self, detail: str, request_id: str | None) -> None:
        super().__init__(errors.BACKEND_REJECTED_IMAGE, detail, request_id=request_id)
        self.detail = detail


def parse_custom_labels(response: dict[str, Any]) -> list[Label]:
    """DetectCustomLabels' ``CustomLabels`` in the shared shape. ``Geometry`` exists only for detectors.
    A confidence outside 0-100 or a non-finite number is MODEL_OUTPUT_INVALID, never a label."""
    labels: list[Label] = []
    for number, item in enumerate(response.get("CustomLabels", [])):
        where = f"CustomLabels[{number}]"
        box = (item.get("Geometry") or {}).get("BoundingBox")
        confidence = _finite(item.get("Confidence"), f"{where}.Confidence")
        if not 0.0 <= confidence <= 100.0:
            raise PermanentError(
                errors.MODEL_OUTPUT_INVALID, f"{where}.Confidence is {confidence!r}; Rekognition answers 0-100"
            )
        labels.append(
            Label(
                name=str(item["Name"]),
                confidence=confidence,
                box=(
                    BoundingBox(
                        left=_finite(box.get("Left"), f"{where} box"),
                        top=_finite(box.get("Top"), f"{where} box"),
                        width=_finite(box.get("Width"), f"{where} box"),
                        height=_finite(box.get("Height"), f"{where} box"),
                    )
                    if box
                    else None
                ),
            )
        )
    return labels


def _finite(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PermanentError(errors.MODEL_OUTPUT_INVALID, f"{where} is {value!r}; expected a finite number")
    return float(value)


# --- registration -------------------------------------------------------------------------------------------


def create(settings: RekognitionSettings, options: ClientOptions, client: Any) -> RekognitionBackend:
    assert settings.model_arn is not None  # Settings.require_model() checked it
    return RekognitionBackend(settings.model_arn, client=client, options=options)
