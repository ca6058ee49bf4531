"""A SageMaker real-time endpoint: InvokeEndpoint with the image bytes.

The endpoint is whatever ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` (or the regional default) points at, so
the same adapter talks to a deployed endpoint or to a local model server.
"""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING, Any

from .. import errors, images
from ..errors import PermanentError, TransientError
from ..model import Detection
from . import sagemaker_formats
from .base import ImageSource, client_config, translate_client_error

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

    from ..thresholds import Thresholds

SERVICE = "SageMaker"
# InvokeEndpoint payloads above about 6 MB fail; leave room for JSON/base64 wrapping.
MAX_PAYLOAD_BYTES = 6 * images.MB
JSON_CONTENT_TYPE = "application/json"


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
        pool_size: int = 10,
        read_timeout: int = 60,
    ) -> None:
        self.model_id = endpoint_name
        self._content_type = content_type
        self._response_format = response_format
        self._class_names = dict(class_names or {})
        # base64 inflates by 4/3 when the image travels inside JSON.
        max_bytes = MAX_PAYLOAD_BYTES * 3 // 4 - 1024 if content_type == JSON_CONTENT_TYPE else MAX_PAYLOAD_BYTES
        native = {"image/png": frozenset({"PNG"}), "image/jpeg": frozenset({"JPEG"})}
        self._limits = images.ImageLimits(
            max_bytes=max_bytes,
            max_side=max_image_side,
            native_formats=native.get(content_type, frozenset({"JPEG", "PNG"})),
        )
        if client is None:
            import boto3

            client = boto3.client(
                "sagemaker-runtime", config=client_config(read_timeout=read_timeout, pool_size=pool_size)
            )
        self._client: Any = client  # a boto3 client, or a fake with the same method

    def detect(self, image: ImageSource, thresholds: Thresholds) -> Detection:
        prepared = images.prepare_read(image.read, self._limits)
        body, content_type = self._request_body(prepared)
        started = time.perf_counter()
        try:
            response = self._client.invoke_endpoint(
                EndpointName=self.model_id, ContentType=content_type, Accept=JSON_CONTENT_TYPE, Body=body
            )
            raw = response["Body"].read()
        except Exception as exc:  # noqa: BLE001 - every failure is translated into the project's kinds
            raise self._translate(exc) from None
        latency_ms = (time.perf_counter() - started) * 1000
        request_id = response.get("ResponseMetadata", {}).get("RequestId")
        try:
            payload = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise sagemaker_formats.ResponseFormatError(
                f"the endpoint answered {len(raw)} bytes that are not JSON: {raw[:80]!r}"
            ) from None
        used_format, labels = sagemaker_formats.parse(payload, self._response_format, self._class_names)
        return Detection(
            labels=tuple(labels),
            image=prepared.facts,
            latency_ms=latency_ms,
            request_id=request_id,
            raw_format=used_format,
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
                # The container answered with an error status: 4xx means it refused this image.
                fields: dict[str, Any] = dict(exc.response)
                original = int(fields.get("OriginalStatusCode") or 0)
                message = error.get("Message", "")
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
        return translate_client_error(exc, SERVICE)
