"""A SageMaker real-time endpoint as the deployment sees it: the settings that name it and say how it is called,
what IAM grants for them, the capacity it offers, and the endpoint's status (endpoints are created and deleted, not
started). The function's adapter (InvokeEndpoint) is ``lambdas/inference/backends/sagemaker.py``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from lambdas.contract import rules
from lambdas.contract.backends import control
from lambdas.contract.backends.control import Lifecycle, ModelStatus, NotSupported
from lambdas.contract.backends.grants import Arns, Grant
from lambdas.contract.backends.spec import BackendSpec
from lambdas.contract.variables import Variable, render_flag, render_json, render_number

MB = 1024 * 1024
# InvokeEndpoint payloads above about 6 MB fail (4 MB on a serverless endpoint); JSON/base64 wrapping counts.
MAX_PAYLOAD_BYTES = 6 * MB
SERVERLESS_MAX_PAYLOAD_BYTES = 4 * MB
JSON_CONTENT_TYPE = "application/json"
CONTENT_TYPES = ("image/jpeg", "image/png", "application/x-image", JSON_CONTENT_TYPE)
# The answers the function can read (``lambdas/inference/backends/sagemaker_formats.py`` has a parser for each).
RESPONSE_FORMATS = (
    "image-classification",
    "object-detection",
    "tensorflow-serving-classification",
    "tensorflow-serving-detection",
    "tensorflow-serving",
)
# Without a configured limit, the stack lets this many batches run at once against an endpoint.
DEFAULT_MAX_CONCURRENCY = 10
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)


class SageMakerSettings(NamedTuple):
    endpoint_name: str | None
    content_type: str
    response_format: str
    class_names: Mapping[int, str] = {}
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
        lambda name, raw: rules.one_of(name, raw, ("auto", *RESPONSE_FORMATS)),
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
