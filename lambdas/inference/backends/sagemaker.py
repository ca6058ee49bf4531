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
from typing import TYPE_CHECKING, Any

from lambdas.contract import errors
from lambdas.contract.backends.sagemaker import JSON_CONTENT_TYPE, MAX_PAYLOAD_BYTES, SageMakerSettings
from lambdas.contract.errors import PermanentError, TransientError
from lambdas.contract.values import Detection, ObjectRef
from lambdas.inference import images
from lambdas.inference.backends import base, sagemaker_formats
from lambdas.inference.backends.base import ClientOptions, client_config, translate_client_error
from lambdas.inference.images import ImageSource

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

    from lambdas.contract.thresholds import Thresholds

SERVICE = "SageMaker"
# A container's own statuses that say "not now" rather than "not this image".
CONTAINER_RETRY_CODES = {408: (errors.BACKEND_TIMEOUT, "timed out"), 429: (errors.BACKEND_THROTTLED, "throttled")}
# What containers say while their model is not loaded yet: TF Serving ("Servable not found for request:
# Latest(model)", "Could not find any versions of model"), TorchServe and MMS ("Model ... is not loaded",
# "Model ... has no worker to serve inference request"), SageMaker multi-model endpoints ("model is loading").
MODEL_LOADING = re.compile(
    r"servable not found|could not find any versions|model is (still |being )?loading|is not (yet )?loaded"
    r"|not loaded yet|has no worker|model not (yet )?ready",
    re.IGNORECASE,
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


def create(settings: SageMakerSettings, options: ClientOptions, client: Any) -> SageMakerBackend:
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
