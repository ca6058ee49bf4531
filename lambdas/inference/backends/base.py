"""The backend port, how the function calls its model (``ClientOptions``), and the service-error translation
backends share. What each backend declares (settings, IAM, capacity, lifecycle) is ``lambdas/contract/backends``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from lambdas.contract import errors
from lambdas.contract.errors import PermanentError, ProcessingError, TransientError

if TYPE_CHECKING:
    from botocore.config import Config

    from lambdas.contract.pacing import RateLimiter
    from lambdas.contract.thresholds import Thresholds
    from lambdas.contract.values import Detection, ObjectRef
    from lambdas.inference.deadline import BoundedCalls
    from lambdas.inference.images.budget import MemoryBudget

from lambdas.contract.backends.spec import DEFAULT_MAX_LABELS, DEFAULT_MAX_RESPONSE_BYTES
from lambdas.contract.variables import CONNECT_TIMEOUT_SECONDS
from lambdas.inference.images.prepare import ImageSource


class InferenceBackend(Protocol):
    """A model that finds labels in an image. Implementations raise only ProcessingError subclasses."""

    name: str
    model_id: str

    def needs_bytes(self, ref: ObjectRef) -> bool:
        """Whether ``detect`` will read the image's bytes, not only its first 64 KiB: the pipeline then asks S3
        for the whole object in the one GET it makes anyway (the header, and the rest streamed)."""
        ...

    def detect(self, image: ImageSource, thresholds: Thresholds) -> Detection:
        """Run the model on the image. ``thresholds`` is a hint (e.g. for a service-side minimum); the
        pipeline applies the thresholds itself to what comes back."""
        ...


# --- what a backend declares ------------------------------------------------------------------------------


# Parsing a JSON answer holds about this many times its size in Python objects (measured: a 5.2 MB detection
# answer held 31 MB; compact numbers hold more per byte), reserved within the decode budget while it is parsed.
RESPONSE_PARSE_FACTOR = 12


class ClientOptions(NamedTuple):
    """How the function calls its model: per-attempt read timeout, connection pool size, the pace
    (``pacing.RateLimiter``) every attempt keeps to, the bound on the whole call (all attempts), and the limits
    on what one answer may cost."""

    read_timeout: int = 30
    pool_size: int = 10
    pace: RateLimiter | None = None
    call_timeout: float = 45.0
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_labels: int = DEFAULT_MAX_LABELS

    def attach(self, client: Any) -> Any:
        """Every HTTP attempt of ``client`` keeps to the pace, and none starts past the invocation's deadline."""
        from lambdas.inference.deadline import before_attempt

        if self.pace is not None:
            self.pace.attach(client)
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is not None:
            events.register("before-send", before_attempt)
        return client

    def calls(self) -> BoundedCalls:
        from lambdas.inference.deadline import BoundedCalls

        return BoundedCalls(self.call_timeout)


# --- error translation ----------------------------------------------------------------------------------------

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


def client_config(options: ClientOptions) -> Config:
    """botocore settings for backend clients. Retry mode and attempts are left to the standard
    ``AWS_RETRY_MODE`` / ``AWS_MAX_ATTEMPTS`` variables, which the stack sets on the function."""
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=options.read_timeout,
        max_pool_connections=max(10, options.pool_size),
    )


def translate_client_error(exc: Exception, service: str) -> ProcessingError:
    """Map a botocore exception to the project's error kinds (the fallback for codes a backend does not
    handle itself)."""
    from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

    if isinstance(exc, ProcessingError):  # already ours (a deadline, a limit)
        return exc
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


@contextlib.contextmanager
def reserve_for_answer(budget: MemoryBudget | None, size: int, what: str) -> Iterator[None]:
    """Hold the memory a ``size``-byte JSON answer takes while it is parsed (never more than the whole budget)."""
    if budget is None:
        yield
        return
    with budget.reserve(min(budget.total, size * RESPONSE_PARSE_FACTOR), f"the model's answer for {what}"):
        yield
