"""The backend port, what a backend module declares to be registered, and the service-error translation
backends share.

A backend is one module with a ``SPEC``: its settings (environment variables and context keys), the factory
of its adapter, the IAM statements the function needs for it, its capacity, and how the embedded stack
emulates the service (a pure request -> response function the local services server calls).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .. import errors
from ..errors import PermanentError, ProcessingError, TransientError

if TYPE_CHECKING:
    from botocore.config import Config

    from ..deadline import BoundedCalls
    from ..images import MemoryBudget
    from ..model import Detection, ObjectRef
    from ..pacing import RateLimiter
    from ..thresholds import Thresholds
    from ..variables import Variable


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

    @property
    def budget(self) -> MemoryBudget | None:
        """The execution environment's decode budget (``images.prepare_source`` reserves within it)."""
        ...


class InferenceBackend(Protocol):
    """A model that finds labels in an image. Implementations raise only ProcessingError subclasses."""

    name: str
    model_id: str

    def detect(self, image: ImageSource, thresholds: Thresholds) -> Detection:
        """Run the model on the image. ``thresholds`` is a hint (e.g. for a service-side minimum); the
        pipeline applies the thresholds itself to what comes back."""
        ...


# --- what a backend declares ------------------------------------------------------------------------------


# What one image's answer may cost at most. SageMaker refuses responses above 6 MB itself; a container behind
# another endpoint may not. More labels than this per image are dropped, least confident first.
DEFAULT_MAX_RESPONSE_BYTES = 6 * 1024 * 1024
DEFAULT_MAX_LABELS = 1000
# Parsing a JSON answer holds about this many times its size in Python objects (measured: a 5.2 MB detection
# answer held 31 MB; compact numbers hold more per byte), reserved within the decode budget while it is parsed.
RESPONSE_PARSE_FACTOR = 12


@dataclass(frozen=True)
class ClientOptions:
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
        from ..deadline import before_attempt

        if self.pace is not None:
            self.pace.attach(client)
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is not None:
            events.register("before-send", before_attempt)
        return client

    def calls(self) -> BoundedCalls:
        from ..deadline import BoundedCalls

        return BoundedCalls(self.call_timeout)


@dataclass(frozen=True)
class Grant:
    """An IAM statement the function needs. ``wildcard_reason`` says why a wildcard resource is the
    narrowest that works (it becomes the cdk-nag IAM5 acknowledgement)."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    wildcard_reason: str | None = None


class Arns(Protocol):
    """Builds ARNs in the deployment's partition, region and account (CDK tokens at synth, strings elsewhere)."""

    def arn(self, service: str, resource: str, name: str) -> str: ...


# --- the model's lifecycle (control plane): what the controller and ``inferctl model`` use ---------------------

# Normalised states. READY is the only one in which images should be taken off the queue.
READY, STARTING, STOPPING, STOPPED, FAILED, MISSING, NOT_CONFIGURED = (
    "READY",
    "STARTING",
    "STOPPING",
    "STOPPED",
    "FAILED",
    "MISSING",
    "NOT_CONFIGURED",
)


@dataclass(frozen=True)
class ModelStatus:
    """What the control plane says about the configured model. ``state`` is one of the normalised states above;
    ``service_status`` is the service's own word (RUNNING, InService...); ``capacity`` describes what runs
    (inference units, instance type and count, serverless memory and concurrency)."""

    model_id: str | None
    state: str
    service_status: str
    capacity: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""
    can_start_stop: bool = False

    @property
    def ready(self) -> bool:
        return self.state == READY


class ModelControl(Protocol):
    """A backend's control plane: describe the model and, where the service allows, start and stop it."""

    def describe(self) -> ModelStatus: ...

    def start(self, units: int) -> None:
        """Ask the service to start the model (returns at once; the model is STARTING)."""
        ...

    def stop(self) -> None:
        """Ask the service to stop the model (returns at once; the model is STOPPING)."""
        ...


class NotSupported(Exception):
    """The backend's service has no start/stop for this kind of model."""


@dataclass(frozen=True)
class Lifecycle:
    """How a backend's model is controlled: ``control(settings, client)`` builds the adapter (a boto3 client is
    created when ``client`` is None); ``grants(settings, arns, start_stop)`` are what the controller needs."""

    service: str  # the boto3 client name of the control plane
    control: Callable[[Any, Any], ModelControl]
    grants: Callable[[Any, Arns, bool], tuple[Grant, ...]]
    can_start_stop: bool


# --- how the embedded stack emulates a backend ---------------------------------------------------------------


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    seconds_per_byte: float = 0.0  # the body is sent this slowly (a model that trickles its answer)


@dataclass(frozen=True)
class Trickled:
    """A local model's answer sent a byte at a time: every socket read gets a byte before its timeout, and the
    whole answer takes ``len(payload) * seconds_per_byte``."""

    payload: Any
    seconds_per_byte: float = 1.0


@dataclass(frozen=True)
class Prediction:
    """What a local model sees: a class (index and name), a score from 0 to 1 and, for detectors, a box as
    normalised corners (xmin, ymin, xmax, ymax)."""

    class_index: int
    name: str
    score: float
    corners: tuple[float, float, float, float] | None = None


class ModelFault(Exception):
    """Raised by a local model to answer like the service would: ``kind`` is one of FAULT_KINDS."""

    def __init__(self, kind: str, message: str = "", status: int | None = None) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind, self.message = kind, message or kind
        self.status = status  # the container's own HTTP status, when the service passes it on (SageMaker)


FAULT_KINDS = ("throttled", "not_ready", "rejected", "internal")

# A local model: image bytes (and the request's content type) in; predictions, or a raw JSON payload that
# the emulation returns as it is (to replay a real endpoint's response), out.
LocalModel = Callable[[bytes, str], "Sequence[Prediction] | Any"]


class ModelDirectory(Protocol):
    """The local models the embedded stack serves, by model id, and the emulator's S3 for by-reference images."""

    def model(self, model_id: str) -> LocalModel | None: ...

    def model_ids(self) -> list[str]: ...

    def lifecycle(self, model_id: str) -> LocalLifecycle | None:
        """The model's emulated lifecycle (None: always running)."""
        ...

    def fetch(self, bucket: str, key: str, version: str | None) -> bytes: ...


class LocalLifecycle:
    """An emulated model's states: STOPPED -> STARTING -> RUNNING -> STOPPING -> STOPPED, each transition taking
    its configured delay (seconds). Tracks how long the model ran (for cost) and every transition."""

    def __init__(
        self, status: str = "RUNNING", *, start_seconds: float = 2.0, stop_seconds: float = 1.0, units: int = 1
    ) -> None:
        import threading
        import time

        self._time = time.monotonic
        self._lock = threading.Lock()
        self.start_seconds, self.stop_seconds = start_seconds, stop_seconds
        self.units = units
        self._status = status
        self._until = 0.0  # when a transition settles
        self._running_since: float | None = self._time() if status == "RUNNING" else None
        self.ran_seconds = 0.0
        self.transitions: list[str] = [status]
        self.starts = self.stops = 0

    def _settle(self) -> None:
        now = self._time()
        if self._status == "STARTING" and now >= self._until:
            self._set("RUNNING")
            self._running_since = self._until
        elif self._status == "STOPPING" and now >= self._until:
            self._set("STOPPED")
            if self._running_since is not None:
                self.ran_seconds += self._until - self._running_since
                self._running_since = None

    def _set(self, status: str) -> None:
        self._status = status
        self.transitions.append(status)

    @property
    def status(self) -> str:
        with self._lock:
            self._settle()
            return self._status

    def start(self, units: int) -> str | None:
        """None when started, else the reason it cannot start now."""
        with self._lock:
            self._settle()
            if self._status != "STOPPED":
                return f"the model is {self._status}"
            self.units, self.starts = units, self.starts + 1
            self._set("STARTING")
            self._until = self._time() + self.start_seconds
            return None

    def stop(self) -> str | None:
        with self._lock:
            self._settle()
            if self._status != "RUNNING":
                return f"the model is {self._status}"
            self.stops += 1
            self._set("STOPPING")
            self._until = self._time() + self.stop_seconds
            return None

    def running_seconds(self) -> float:
        with self._lock:
            self._settle()
            extra = self._time() - self._running_since if self._running_since is not None else 0.0
            return self.ran_seconds + extra


@dataclass(frozen=True)
class Emulation:
    """How the embedded stack stands in for the service: requests that ``handles`` accepts reach ``serve``
    on the local services server, which the unchanged adapter reaches through ``endpoint_variable``."""

    endpoint_variable: str
    handles: Callable[[HttpRequest], bool]
    serve: Callable[[HttpRequest, ModelDirectory], HttpResponse]
    demo_context: Callable[[str, Sequence[str]], dict[str, Any]]  # (model id, class names) -> context keys
    demo_model_id: str


@dataclass(frozen=True)
class BackendSpec:
    name: str
    title: str
    settings_type: type[Any]
    variables: tuple[Variable, ...]
    model_variable: Variable  # the one that names the model (required before the function can work)
    create: Callable[[Any, ClientOptions, Any], InferenceBackend]  # (settings, options, client or None)
    grants: Callable[[Any, Arns], tuple[Grant, ...]]
    capacity: Callable[[Any], float | None]  # model calls per second it can take; None: not known
    emulation: Emulation
    lifecycle: Lifecycle
    runtime_service: str = ""  # the boto3 client name of the inference API

    def settings(self, values: Mapping[str, Any]) -> Any:
        return self.settings_type(**values)


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
CONNECT_TIMEOUT_SECONDS = 2


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


# --- helpers the emulations share -------------------------------------------------------------------------------


def json_response(status: int, payload: Any, content_type: str, **headers: str) -> HttpResponse:
    import json

    return HttpResponse(status, json.dumps(payload).encode(), {"Content-Type": content_type, **headers})
