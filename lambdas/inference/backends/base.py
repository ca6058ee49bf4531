"""The backend port and what backends share: the image they are given and service-error translation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .. import errors
from ..errors import PermanentError, ProcessingError, TransientError

if TYPE_CHECKING:
    from botocore.config import Config

    from ..model import Detection, ObjectRef
    from ..thresholds import Thresholds


class ImageSource(Protocol):
    """The image to analyse: where it is, and a way to read its bytes only if the backend needs them."""

    @property
    def ref(self) -> ObjectRef: ...

    def read(self) -> bytes:
        """The object's bytes (raises PermanentError/TransientError from storage)."""
        ...

    def read_head(self, length: int) -> bytes:
        """The object's first ``length`` bytes (all of it when it is shorter)."""
        ...


class InferenceBackend(Protocol):
    """A model that finds labels in an image. Implementations raise only ProcessingError subclasses."""

    name: str
    model_id: str

    def detect(self, image: ImageSource, thresholds: Thresholds) -> Detection:
        """Run the model on the image. ``thresholds`` is a hint (e.g. for a service-side minimum); the
        pipeline applies the thresholds itself to what comes back."""
        ...


# Codes every AWS service uses for throttling and server-side trouble.
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
    }
)
SERVER_CODES = frozenset({"InternalServerError", "InternalFailure", "ServiceUnavailable", "InternalError"})


CONNECT_TIMEOUT_SECONDS = 2


def client_config(read_timeout: int, pool_size: int) -> Config:
    """botocore settings for backend clients. Retry mode and attempts are left to the standard
    ``AWS_RETRY_MODE`` / ``AWS_MAX_ATTEMPTS`` variables, which the stack sets on the function."""
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=read_timeout, max_pool_connections=max(10, pool_size)
    )


def translate_client_error(exc: Exception, service: str) -> ProcessingError:
    """Map a botocore exception to the project's error kinds (the fallback for codes a backend does not
    handle itself)."""
    from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

    if isinstance(exc, ReadTimeoutError):
        return TransientError(errors.BACKEND_TIMEOUT, f"{service} did not answer in time: {exc}")
    if isinstance(exc, ConnectionError):
        return TransientError(errors.BACKEND_UNAVAILABLE, f"cannot reach {service}: {exc}")
    if not isinstance(exc, ClientError):
        return TransientError(errors.BACKEND_UNAVAILABLE, f"{service} call failed: {exc!r}")
    error = exc.response.get("Error", {})
    code = error.get("Code", "Unknown")
    message = error.get("Message", "")
    request_id = exc.response.get("ResponseMetadata", {}).get("RequestId")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    detail = f"{service} {code}: {message}".rstrip(": ")
    if code in THROTTLING_CODES:
        return TransientError(errors.BACKEND_THROTTLED, detail, request_id=request_id)
    if code in SERVER_CODES or status >= 500:
        return TransientError(errors.BACKEND_UNAVAILABLE, detail, request_id=request_id)
    if code in ("AccessDeniedException", "AccessDenied", "ResourceNotFoundException", "ValidationException"):
        # Wrong model id or missing permission: an operator must fix it. Retried, then dead-lettered,
        # so the images can be redriven once the configuration is right.
        return TransientError(errors.BACKEND_MISCONFIGURED, detail, request_id=request_id)
    if 400 <= status < 500:
        return PermanentError(errors.BACKEND_REJECTED_IMAGE, detail, request_id=request_id)
    return TransientError(errors.BACKEND_UNAVAILABLE, detail, request_id=request_id)
