"""Amazon Rekognition Custom Labels: DetectCustomLabels on a model version ARN.

The image goes by reference (``Image.S3Object``) whenever it might qualify, so no image bytes pass through
the Lambda. When Rekognition cannot take the object as it is (another format, too large, too many pixels),
the image is read, converted or downscaled with Pillow, and sent as ``Image.Bytes`` within the limits.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambdas.inference import images
from lambdas.inference.backends import control
from lambdas.inference.backends.base import (
    BackendSpec,
    ClientOptions,
    client_config,
    translate_client_error,
)
from lambdas.inference.backends.control import Lifecycle, ModelStatus
from lambdas.inference.backends.grants import Arns, Grant
from lambdas.inference.core import errors, rules
from lambdas.inference.core.errors import PermanentError, ProcessingError, TransientError
from lambdas.inference.core.values import BoundingBox, Detection, ImageFacts, Label, ObjectRef
from lambdas.inference.core.variables import Variable
from lambdas.inference.images import ImageSource

if TYPE_CHECKING:
    from mypy_boto3_rekognition import RekognitionClient

    from lambdas.inference.core.thresholds import Thresholds

SERVICE = "Rekognition"
S3_OBJECT_MAX_BYTES = images.REKOGNITION_S3_OBJECT.max_bytes
S3_OBJECT_SUFFIXES = (".jpg", ".jpeg", ".png")
# Codes that mean "not like this": the S3Object attempt falls back to sending prepared bytes.
IMAGE_REJECTION_CODES = frozenset(
    {"InvalidImageFormatException", "ImageTooLargeException", "InvalidS3ObjectException", "InvalidParameterException"}
)
# Rekognition Custom Labels: about 5 transactions per second per inference unit (older AWS guidance).
DEFAULT_TPS_PER_INFERENCE_UNIT = 5


@dataclass(frozen=True)
class RekognitionSettings:
    model_arn: str | None
    project_name: str
    inference_units: int
    tps_per_inference_unit: int

    @property
    def model_id(self) -> str | None:
        return self.model_arn


MODEL_ARN = Variable(
    "model_arn",
    "REKOGNITION_MODEL_ARN",
    "rekognitionModelArn",
    rules.rekognition_model_arn,
    doc="model version ARN; IAM is scoped to it",
)
VARIABLES = (
    MODEL_ARN,
    Variable(
        "project_name",
        None,
        "rekognitionProjectName",
        rules.rekognition_project_name,
        "image-inference",
        doc="until a model ARN is set, IAM allows project/<name>/version/*",
    ),
    Variable(
        "inference_units",
        None,
        "inferenceUnits",
        lambda name, raw: rules.integer(name, raw, 1, 1000),
        1,
        doc="inference units the model runs with (capacity)",
    ),
    Variable(
        "tps_per_inference_unit",
        None,
        "tpsPerInferenceUnit",
        lambda name, raw: rules.integer(name, raw, 1, 1000),
        DEFAULT_TPS_PER_INFERENCE_UNIT,
        doc="calls per second one inference unit takes (capacity)",
    ),
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


def _create(settings: RekognitionSettings, options: ClientOptions, client: Any) -> RekognitionBackend:
    assert settings.model_arn is not None  # Settings.require_model() checked it
    return RekognitionBackend(settings.model_arn, client=client, options=options)


def _model_versions(settings: RekognitionSettings, arns: Arns, sid: str, actions: tuple[str, ...]) -> Grant:
    """``actions`` on the configured model version; deployed before training (deploy, train, then set the ARN),
    on the project's versions."""
    if settings.model_arn:
        return Grant(sid, actions, (settings.model_arn,))
    return Grant(
        sid,
        actions,
        (arns.arn("rekognition", "project", f"{settings.project_name}/version/*"),),
        wildcard_reason="No model version exists before the first training; scoped to the project's versions "
        "until rekognitionModelArn is set",
    )


def _grants(settings: RekognitionSettings, arns: Arns) -> tuple[Grant, ...]:
    sid = "DetectWithConfiguredModel" if settings.model_arn else "DetectWithProjectModels"
    return (_model_versions(settings, arns, sid, ("rekognition:DetectCustomLabels",)),)


def _capacity(settings: RekognitionSettings) -> float:
    return float(settings.inference_units * settings.tps_per_inference_unit)


# --- lifecycle: DescribeProjects / DescribeProjectVersions / StartProjectVersion / StopProjectVersion ----------

# The service's statuses by what they mean for the queue (anything else, e.g. TRAINING_FAILED, EXPIRED: FAILED).
_STATES = {
    "RUNNING": control.READY,
    "STARTING": control.STARTING,
    "STOPPING": control.STOPPING,
    "STOPPED": control.STOPPED,
    "TRAINING_COMPLETED": control.STOPPED,  # trained, never started
    "COPYING_COMPLETED": control.STOPPED,
    "TRAINING_IN_PROGRESS": control.STARTING,
    "COPYING_IN_PROGRESS": control.STARTING,
}


def version_parts(model_arn: str) -> tuple[str, str]:
    """(project name, version name) of ``arn:...:project/<project>/version/<version>/<timestamp>``."""
    resource = model_arn.split(":", 5)[-1].split("/")
    if len(resource) < 5 or resource[0] != "project" or resource[2] != "version":
        raise ValueError(f"not a model version ARN: {model_arn}")
    return resource[1], resource[3]


class RekognitionControl:
    """A Custom Labels model version's lifecycle. Billing runs per inference unit per hour while it runs."""

    def __init__(self, model_arn: str, client: Any | None = None) -> None:
        self.model_arn = model_arn
        self.project, self.version = version_parts(model_arn)
        if client is None:
            import boto3

            client = boto3.client("rekognition")
        self._client: Any = client

    def _project_arn(self) -> str | None:
        projects = self._client.describe_projects(ProjectNames=[self.project]).get("ProjectDescriptions", [])
        return str(projects[0]["ProjectArn"]) if projects else None

    def describe(self) -> ModelStatus:
        project_arn = self._project_arn()
        found: list[dict[str, Any]] = []
        if project_arn:
            response = self._client.describe_project_versions(ProjectArn=project_arn, VersionNames=[self.version])
            found = [
                item
                for item in response.get("ProjectVersionDescriptions", [])
                if item.get("ProjectVersionArn") == self.model_arn
            ]
        if not found:
            where = f"project {self.project}" if project_arn else f"no project named {self.project}"
            return ModelStatus(self.model_arn, control.MISSING, "NOT_FOUND", detail=f"version {self.version}: {where}")
        version = found[0]
        status = str(version.get("Status", "UNKNOWN"))
        capacity = {
            key: version[key] for key in ("MinInferenceUnits", "MaxInferenceUnits") if version.get(key) is not None
        }
        return ModelStatus(
            self.model_arn,
            _STATES.get(status, control.FAILED),
            status,
            capacity=capacity,
            detail=str(version.get("StatusMessage", "")),
            can_start_stop=True,
        )

    def start(self, units: int) -> None:
        self._client.start_project_version(ProjectVersionArn=self.model_arn, MinInferenceUnits=units)

    def stop(self) -> None:
        self._client.stop_project_version(ProjectVersionArn=self.model_arn)


def _control(settings: RekognitionSettings, client: Any) -> RekognitionControl:
    assert settings.model_arn is not None
    return RekognitionControl(settings.model_arn, client)


def _control_grants(settings: RekognitionSettings, arns: Arns, start_stop: bool) -> tuple[Grant, ...]:
    # The configured version's project (its ARN names it); before training, the configured project name.
    project = version_parts(settings.model_arn)[0] if settings.model_arn else settings.project_name
    grants = [
        Grant(
            "FindProject",
            ("rekognition:DescribeProjects",),
            ("*",),
            wildcard_reason="DescribeProjects takes no resource-level permission; it finds the project's ARN, "
            "which DescribeProjectVersions needs",
        ),
        Grant(
            "DescribeModelVersions",
            ("rekognition:DescribeProjectVersions",),
            (arns.arn("rekognition", "project", f"{project}/*"),),
            wildcard_reason="The project ARN ends in its creation timestamp, unknown at deploy time; scoped to "
            "the configured project",
        ),
    ]
    if start_stop:
        actions = ("rekognition:StartProjectVersion", "rekognition:StopProjectVersion")
        grants.append(_model_versions(settings, arns, "StartStopConfiguredModel", actions))
    return tuple(grants)


SPEC = BackendSpec(
    name="rekognition",
    title="Amazon Rekognition Custom Labels",
    settings_type=RekognitionSettings,
    variables=VARIABLES,
    model_variable=MODEL_ARN,
    create=_create,
    grants=_grants,
    capacity=_capacity,
    lifecycle=Lifecycle(service="rekognition", control=_control, grants=_control_grants, can_start_stop=True),
    runtime_service="rekognition",
)
