"""A SageMaker real-time endpoint: InvokeEndpoint with the image bytes.

The endpoint is whatever ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` (or the regional default) points at, so
the same adapter talks to a deployed endpoint or to a local model server.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lambdas.inference import images
from lambdas.inference.backends import base, control, sagemaker_formats
from lambdas.inference.backends.base import (
    BackendSpec,
    ClientOptions,
    client_config,
    translate_client_error,
)
from lambdas.inference.backends.control import Lifecycle, ModelStatus, NotSupported
from lambdas.inference.backends.grants import Arns, Grant
from lambdas.inference.core import errors, rules
from lambdas.inference.core.errors import PermanentError, TransientError
from lambdas.inference.core.values import Detection, ObjectRef
from lambdas.inference.core.variables import Variable, render_flag, render_json, render_number
from lambdas.inference.images import ImageSource

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

    from lambdas.inference.core.thresholds import Thresholds

SERVICE = "SageMaker"
# InvokeEndpoint payloads above about 6 MB fail (4 MB on a serverless endpoint); JSON/base64 wrapping counts.
MAX_PAYLOAD_BYTES = 6 * images.MB
SERVERLESS_MAX_PAYLOAD_BYTES = 4 * images.MB
JSON_CONTENT_TYPE = "application/json"
# A container's own statuses that say "not now" rather than "not this image".
CONTAINER_RETRY_CODES = {408: (errors.BACKEND_TIMEOUT, "timed out"), 429: (errors.BACKEND_THROTTLED, "throttled")}
CONTENT_TYPES = ("image/jpeg", "image/png", "application/x-image", JSON_CONTENT_TYPE)
# What containers say while their model is not loaded yet: TF Serving ("Servable not found for request:
# Latest(model)", "Could not find any versions of model"), TorchServe and MMS ("Model ... is not loaded",
# "Model ... has no worker to serve inference request"), SageMaker multi-model endpoints ("model is loading").
MODEL_LOADING = re.compile(
    r"servable not found|could not find any versions|model is (still |being )?loading|is not (yet )?loaded"
    r"|not loaded yet|has no worker|model not (yet )?ready",
    re.IGNORECASE,
)
# Without a configured limit, the stack lets this many batches run at once against an endpoint.
DEFAULT_MAX_CONCURRENCY = 10
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)


@dataclass(frozen=True)
class SageMakerSettings:
    endpoint_name: str | None
    content_type: str
    response_format: str
    class_names: Mapping[int, str] = field(default_factory=dict)
    max_image_side: int = 2048
    max_calls_per_second: int | None = None
    serverless: bool = False
    serverless_max_concurrency: int = 20
    serverless_memory_mb: int = 4096

    @property
    def model_id(self) -> str | None:
        return self.endpoint_name

    @property
    def max_payload_bytes(self) -> int:
        return SERVERLESS_MAX_PAYLOAD_BYTES if self.serverless else MAX_PAYLOAD_BYTES


ENDPOINT_NAME = Variable(
    "endpoint_name",
    "SAGEMAKER_ENDPOINT_NAME",
    "sagemakerEndpointName",
    rules.sagemaker_endpoint_name,
    doc="endpoint name; IAM is scoped to it",
)
VARIABLES = (
    ENDPOINT_NAME,
    Variable(
        "content_type",
        "SAGEMAKER_CONTENT_TYPE",
        "sagemakerContentType",
        lambda name, raw: rules.one_of(name, raw, CONTENT_TYPES),
        "image/jpeg",
        doc="request content type; application/json sends TF Serving {'instances': [{'b64': ...}]}",
    ),
    Variable(
        "response_format",
        "SAGEMAKER_RESPONSE_FORMAT",
        "sagemakerResponseFormat",
        lambda name, raw: rules.one_of(name, raw, ("auto", *sagemaker_formats.PARSERS)),
        "auto",
        doc="how the endpoint answers, or auto",
    ),
    Variable(
        "class_names",
        "SAGEMAKER_CLASS_NAMES",
        "sagemakerClassNames",
        rules.class_names,
        {},
        render=render_json,
        doc="class index -> name: JSON list, JSON object or a,b,c",
    ),
    Variable(
        "max_image_side",
        "SAGEMAKER_MAX_IMAGE_SIDE",
        "sagemakerMaxImageSide",
        lambda name, raw: rules.integer(name, raw, 64, 8192),
        2048,
        doc="images are downscaled to this longest side before they are sent",
    ),
    Variable(
        "max_calls_per_second",
        None,
        "sagemakerMaxCallsPerSecond",
        lambda name, raw: rules.integer(name, raw, 1, 100_000),
        doc="calls per second the endpoint takes (capacity); unset: maxConcurrency 10",
        render=render_number,
    ),
    Variable(
        "serverless",
        "SAGEMAKER_SERVERLESS",
        "sagemakerServerless",
        rules.flag,
        False,
        render=render_flag,
        doc="the endpoint is serverless: 4 MB payloads, cold starts, capacity from its max concurrency",
    ),
    Variable(
        "serverless_max_concurrency",
        None,
        "sagemakerServerlessMaxConcurrency",
        lambda name, raw: rules.integer(name, raw, 1, 200),
        20,
        doc="a serverless endpoint's MaxConcurrency (capacity: concurrent calls)",
    ),
    Variable(
        "serverless_memory_mb",
        None,
        "sagemakerServerlessMemoryMb",
        lambda name, raw: rules.one_of_numbers(name, raw, SERVERLESS_MEMORY_SIZES),
        4096,
        doc="a serverless endpoint's memory (1024-6144 in 1024 steps), for the cost estimate",
    ),
)


class SageMakerBackend:
    name = "sagemaker"

    def __init__(
        self,
        endpoint_name: str,
        content_type: str = "image/jpeg",
        response_format: str = "auto",
        class_names: Mapping[int, str] | None = None,
        max_image_side: int = 2048,
        client: SageMakerRuntimeClient | Any | None = None,
        options: ClientOptions | None = None,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        self.model_id = endpoint_name
        self._content_type = content_type
        self._response_format = response_format
        self._class_names = dict(class_names or {})
        # base64 inflates by 4/3 when the image travels inside JSON.
        max_bytes = max_payload_bytes * 3 // 4 - 1024 if content_type == JSON_CONTENT_TYPE else max_payload_bytes
        native = {"image/png": frozenset({"PNG"}), "image/jpeg": frozenset({"JPEG"})}
        self._limits = images.ImageLimits(
            max_bytes=max_bytes,
            max_side=max_image_side,
            native_formats=native.get(content_type, frozenset({"JPEG", "PNG"})),
        )
        options = options or ClientOptions()
        if client is None:
            import boto3

            client = boto3.client("sagemaker-runtime", config=client_config(options))
        self._client: Any = options.attach(client)  # a boto3 client, or a fake with the same method
        self._calls = options.calls()
        self._max_response_bytes = options.max_response_bytes
        self._max_labels = options.max_labels

    def needs_bytes(self, ref: ObjectRef) -> bool:
        return True  # the endpoint takes the image in the request

    def detect(self, image: ImageSource, thresholds: Thresholds) -> Detection:
        # Verified: a truncated file that would pass through untouched must not reach (and bill) the model.
        prepared = images.prepare_source(image, self._limits, verify=True)
        body, content_type = self._request_body(prepared)
        facts = prepared.facts
        del prepared  # the request body is all that is needed from here on
        started = time.perf_counter()
        limit = self._max_response_bytes

        def invoke() -> tuple[dict[str, Any], bytes]:
            response = self._client.invoke_endpoint(
                EndpointName=self.model_id, ContentType=content_type, Accept=JSON_CONTENT_TYPE, Body=body
            )
            return response, response["Body"].read(limit + 1)  # never more than the limit in memory

        try:
            response, raw = self._calls.run(invoke, SERVICE)
        except Exception as exc:  # noqa: BLE001 - every failure is translated into the project's kinds
            raise self._translate(exc) from None
        latency_ms = (time.perf_counter() - started) * 1000
        request_id = response.get("ResponseMetadata", {}).get("RequestId")
        if len(raw) > limit:
            raise PermanentError(
                errors.MODEL_OUTPUT_TOO_LARGE,
                f"{SERVICE} answered more than {limit} bytes (MODEL_RESPONSE_MAX_BYTES); nothing of it was parsed",
                request_id=request_id,
            )
        try:
            with base.reserve_for_answer(image.budget, len(raw), image.ref.key):
                payload = sagemaker_formats.loads(raw)
                used_format, labels, dropped = sagemaker_formats.parse(
                    payload, self._response_format, self._class_names, self._max_labels
                )
        except PermanentError as exc:
            exc.request_id = request_id
            raise
        return Detection(
            labels=tuple(labels),
            image=facts,
            latency_ms=latency_ms,
            request_id=request_id,
            raw_format=used_format,
            dropped_over_limit=dropped,
        )

    def _request_body(self, prepared: images.PreparedImage) -> tuple[bytes, str]:
        if self._content_type == JSON_CONTENT_TYPE:
            # TensorFlow Serving's convention for binary inputs.
            encoded = base64.b64encode(prepared.data).decode("ascii")
            return json.dumps({"instances": [{"b64": encoded}]}).encode(), JSON_CONTENT_TYPE
        if self._content_type == "application/x-image":
            return prepared.data, self._content_type
        return prepared.data, "image/png" if prepared.content_format == "PNG" else "image/jpeg"

    @staticmethod
    def _translate(exc: Exception) -> Exception:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            request_id = exc.response.get("ResponseMetadata", {}).get("RequestId")
            if code == "ModelError":
                # The container answered with an error status: 408/429 and 5xx are its own trouble (retried),
                # another 4xx means it refused this image.
                fields: dict[str, Any] = dict(exc.response)
                original = int(fields.get("OriginalStatusCode") or 0)
                message = error.get("Message", "")
                if MODEL_LOADING.search(message):
                    # TF Serving answers 404 "Servable not found" while its model loads (after a deploy, a
                    # scale-out, a multi-model endpoint's first call): not this image's fault, it waits.
                    return TransientError(
                        errors.MODEL_NOT_READY,
                        f"{SERVICE} model is still loading ({original}): {message}",
                        request_id=request_id,
                    )
                if original in CONTAINER_RETRY_CODES:
                    kind, word = CONTAINER_RETRY_CODES[original]
                    return TransientError(
                        kind, f"{SERVICE} model {word} ({original}): {message}", request_id=request_id
                    )
                if 400 <= original < 500:
                    return PermanentError(
                        errors.BACKEND_REJECTED_IMAGE,
                        f"{SERVICE} model refused the image ({original}): {message}",
                        request_id=request_id,
                    )
                return TransientError(
                    errors.BACKEND_UNAVAILABLE,
                    f"{SERVICE} model failed ({original or 'no status'}): {message}",
                    request_id=request_id,
                )
            if code == "ModelNotReadyException":
                return TransientError(
                    errors.MODEL_NOT_READY,
                    f"{SERVICE} endpoint is not ready: {error.get('Message', '')}",
                    request_id=request_id,
                )
            message = str(error.get("Message", ""))
            if code in ("ValidationError", "ValidationException") and "not found" in message.lower():
                # "Endpoint X of account Y not found.": not created yet, or deleted to save cost. Not this
                # image's fault: it waits (the controller pauses the trigger until the endpoint is InService).
                return TransientError(
                    errors.MODEL_NOT_READY, f"{SERVICE} endpoint does not exist (yet): {message}", request_id=request_id
                )
        return translate_client_error(exc, SERVICE)


# --- registration -------------------------------------------------------------------------------------------


def _create(settings: SageMakerSettings, options: ClientOptions, client: Any) -> SageMakerBackend:
    assert settings.endpoint_name is not None  # Settings.require_model() checked it
    return SageMakerBackend(
        endpoint_name=settings.endpoint_name,
        content_type=settings.content_type,
        response_format=settings.response_format,
        class_names=settings.class_names,
        max_image_side=settings.max_image_side,
        client=client,
        options=options,
        max_payload_bytes=settings.max_payload_bytes,
    )


def _grants(settings: SageMakerSettings, arns: Arns) -> tuple[Grant, ...]:
    if not settings.endpoint_name:
        return ()
    # Endpoint ARNs carry the name in lower case.
    endpoint = arns.arn("sagemaker", "endpoint", settings.endpoint_name.lower())
    return (Grant("InvokeConfiguredEndpoint", ("sagemaker:InvokeEndpoint",), (endpoint,)),)


def _capacity(settings: SageMakerSettings) -> float | None:
    if settings.max_calls_per_second:
        return float(settings.max_calls_per_second)
    # A serverless endpoint takes MaxConcurrency calls at once; at about a second a call, that many a second.
    return float(settings.serverless_max_concurrency) if settings.serverless else None


# --- lifecycle: DescribeEndpoint / DescribeEndpointConfig (endpoints are created and deleted, not started) -----

_ENDPOINT_STATES = {
    "InService": control.READY,
    "Updating": control.READY,  # an endpoint being updated keeps serving
    "SystemUpdating": control.READY,
    "Creating": control.STARTING,
    "RollingBack": control.STARTING,
    "Deleting": control.STOPPING,
}


class SageMakerControl:
    """An endpoint's status and what runs it (instance type and count, or serverless memory and concurrency)."""

    def __init__(self, endpoint_name: str, client: Any | None = None) -> None:
        self.endpoint_name = endpoint_name
        if client is None:
            import boto3

            client = boto3.client("sagemaker")
        self._client: Any = client

    def describe(self) -> ModelStatus:
        from botocore.exceptions import ClientError

        try:
            endpoint = self._client.describe_endpoint(EndpointName=self.endpoint_name)
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if "could not find" in message.lower() or "not found" in message.lower():
                return ModelStatus(self.endpoint_name, control.MISSING, "NotFound", detail=message)
            raise
        status = str(endpoint.get("EndpointStatus", "Unknown"))
        capacity: dict[str, Any] = {}
        variants = endpoint.get("ProductionVariants") or []
        if variants:
            variant = variants[0]
            serverless = variant.get("CurrentServerlessConfig")
            if serverless:
                capacity = {"ServerlessMemoryMB": serverless.get("MemorySizeInMB"), **_concurrency(serverless)}
            else:
                capacity = {"InstanceCount": variant.get("CurrentInstanceCount")}
        config_name = endpoint.get("EndpointConfigName")
        if config_name and "ServerlessMemoryMB" not in capacity:
            config = self._client.describe_endpoint_config(EndpointConfigName=config_name)
            variant = (config.get("ProductionVariants") or [{}])[0]
            if variant.get("InstanceType"):
                capacity["InstanceType"] = variant["InstanceType"]
                capacity.setdefault("InstanceCount", variant.get("InitialInstanceCount"))
            if variant.get("ServerlessConfig"):
                serverless = variant["ServerlessConfig"]
                capacity = {"ServerlessMemoryMB": serverless.get("MemorySizeInMB"), **_concurrency(serverless)}
        return ModelStatus(
            self.endpoint_name,
            _ENDPOINT_STATES.get(status, control.FAILED),
            status,
            capacity={key: value for key, value in capacity.items() if value is not None},
            detail=str(endpoint.get("FailureReason", "")),
            since=_epoch(endpoint.get("LastModifiedTime")),
        )

    def start(self, units: int) -> None:
        raise NotSupported(
            "a SageMaker endpoint is created and deleted with its endpoint configuration, not started; "
            "a serverless endpoint scales to zero by itself"
        )

    def stop(self) -> None:
        self.start(0)


def _concurrency(serverless: Mapping[str, Any]) -> dict[str, Any]:
    return {"ServerlessMaxConcurrency": serverless.get("MaxConcurrency")}


def _control(settings: SageMakerSettings, client: Any) -> SageMakerControl:
    assert settings.endpoint_name is not None
    return SageMakerControl(settings.endpoint_name, client)


def _control_grants(settings: SageMakerSettings, arns: Arns, start_stop: bool) -> tuple[Grant, ...]:
    if not settings.endpoint_name:
        return ()
    return (
        Grant(
            "DescribeConfiguredEndpoint",
            ("sagemaker:DescribeEndpoint",),
            (arns.arn("sagemaker", "endpoint", settings.endpoint_name.lower()),),
        ),
        Grant(
            "DescribeEndpointConfigs",
            ("sagemaker:DescribeEndpointConfig",),
            (arns.arn("sagemaker", "endpoint-config", "*"),),
            wildcard_reason="The endpoint's configuration name changes with every endpoint update and is not "
            "known at deploy time; read-only",
        ),
    )


SPEC = BackendSpec(
    name="sagemaker",
    title="Amazon SageMaker real-time endpoint",
    settings_type=SageMakerSettings,
    variables=VARIABLES,
    model_variable=ENDPOINT_NAME,
    create=_create,
    grants=_grants,
    capacity=_capacity,
    lifecycle=Lifecycle(service="sagemaker", control=_control, grants=_control_grants, can_start_stop=False),
    runtime_service="sagemaker-runtime",
)


def _epoch(value: Any) -> float | None:
    """A timestamp in epoch seconds: as boto3 parses it (datetime), as a number, or as ISO 8601 text; None when
    absent or unreadable (the status stands without it)."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None
