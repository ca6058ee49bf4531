"""SageMaker on the local services server: InvokeEndpoint (REST) answered by a local model, and the control
plane's DescribeEndpoint / DescribeEndpointConfig (JSON 1.1) for emulated endpoints. The unchanged adapter
reaches it through ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from inferctl.emulator.models.base import (
    Emulation,
    HttpRequest,
    HttpResponse,
    ModelDirectory,
    ModelFault,
    Prediction,
    Trickled,
    json_response,
)

_INVOCATIONS = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")


def _error(status: int, code: str, message: str, **fields: Any) -> HttpResponse:
    return json_response(status, {"message": message, **fields}, "application/json", **{"x-amzn-ErrorType": code})


def _model_error(original_status: int, message: str) -> HttpResponse:
    # A container that answers with an error status surfaces as ModelError (424) with its original status.
    return _error(
        424,
        "ModelError",
        f'Received client error ({original_status}) from primary with message "{message}"',
        OriginalStatusCode=original_status,
        OriginalMessage=message,
    )


_CONTROL_TARGET = "SageMaker."
# An emulated lifecycle's status as the endpoint's (a stopped model is an endpoint that does not exist).
_ENDPOINT_STATUS = {"RUNNING": "InService", "STARTING": "Creating", "STOPPING": "Deleting"}


_CREATED = time.time()  # the emulated endpoints were created when the emulation was loaded


def _handles(request: HttpRequest) -> bool:
    target = request.headers.get("X-Amz-Target", "")
    if target in (_CONTROL_TARGET + "DescribeEndpoint", _CONTROL_TARGET + "DescribeEndpointConfig"):
        return True
    return request.method == "POST" and bool(_INVOCATIONS.match(request.path))


def _endpoint_status(name: str, models: ModelDirectory) -> str | None:
    """The emulated endpoint's status; None when it does not exist."""
    if models.model(name) is None:
        return None
    lifecycle = models.lifecycle(name)
    return _ENDPOINT_STATUS.get(lifecycle.status) if lifecycle else "InService"


def _describe(request: HttpRequest, models: ModelDirectory) -> HttpResponse:
    payload = json.loads(request.body or b"{}")
    json_type = "application/x-amz-json-1.1"
    if request.headers.get("X-Amz-Target", "").endswith("DescribeEndpointConfig"):
        name = str(payload.get("EndpointConfigName", ""))
        variant = {"VariantName": "AllTraffic", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1}
        return json_response(200, {"EndpointConfigName": name, "ProductionVariants": [variant]}, json_type)
    name = str(payload.get("EndpointName", ""))
    status = _endpoint_status(name, models)
    if status is None:
        return json_response(
            400, {"__type": "ValidationException", "message": f'Could not find endpoint "{name}".'}, json_type
        )
    return json_response(
        200,
        {
            "EndpointName": name,
            "EndpointStatus": status,
            "EndpointConfigName": f"{name}-config",
            "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 1}],
            "CreationTime": _CREATED,
            "LastModifiedTime": _CREATED,
        },
        json_type,
    )


def _serve(request: HttpRequest, models: ModelDirectory) -> HttpResponse:
    if request.headers.get("X-Amz-Target", "").startswith(_CONTROL_TARGET):
        return _describe(request, models)
    match = _INVOCATIONS.match(request.path)
    name = match["name"] if match else ""
    model = models.model(name)
    status = _endpoint_status(name, models)
    if model is None or status is None:
        return _error(400, "ValidationException", f"Endpoint {name} of account 123456789012 not found.")
    if status != "InService":
        return _error(429, "ModelNotReadyException", f"Endpoint {name} is {status}")
    try:
        answer = model(request.body, request.headers.get("Content-Type", ""))
    except ModelFault as fault:
        if fault.kind == "throttled":
            return _error(400, "ThrottlingException", fault.message)
        if fault.kind == "not_ready":
            return _error(429, "ModelNotReadyException", fault.message)
        return _model_error(fault.status or (400 if fault.kind == "rejected" else 500), fault.message)
    except Exception as exc:  # noqa: BLE001 - a crashing model is a 500 from the container
        return _model_error(500, f"model failed: {exc!r}")
    if isinstance(answer, Trickled):
        slow = json_response(200, answer.payload, "application/json")
        return HttpResponse(slow.status, slow.body, slow.headers, seconds_per_byte=answer.seconds_per_byte)
    if isinstance(answer, list) and all(isinstance(item, Prediction) for item in answer):
        # Predictions travel in the built-in object-detection format.
        rows = [[float(p.class_index), p.score, *(p.corners or (0.0, 0.0, 1.0, 1.0))] for p in answer]
        answer = {"prediction": rows}
    return json_response(200, answer, "application/json")


def _demo_context(model_id: str, classes: Any) -> dict[str, Any]:
    return {
        "backend": "sagemaker",
        "sagemakerEndpointName": model_id,
        "sagemakerResponseFormat": "object-detection",
        "sagemakerClassNames": list(classes),
    }


EMULATION = Emulation(
    endpoint_variable="AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
    handles=_handles,
    serve=_serve,
    demo_context=_demo_context,
    model_id=lambda name: name,  # the endpoint's name
)
