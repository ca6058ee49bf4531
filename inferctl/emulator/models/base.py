"""How the embedded stack stands in for a model service: the HTTP request and response the local services
server passes, the local models it serves (image bytes in, predictions out), their emulated lifecycle, and what
each backend's emulation declares (``Emulation``). Operator-tool code: nothing here ships to Lambda."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


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


# The names local models are served under: the stand-in says it is one wherever its results land (the model_id of
# every result document); the real detector says what it is.
STAND_IN_ID = "stand-in-shapes"
DETECTOR_ID = "opencv-cascades"


@dataclass(frozen=True)
class Emulation:
    """How the embedded stack stands in for the service: requests that ``handles`` accepts reach ``serve``
    on the local services server, which the unchanged adapter reaches through ``endpoint_variable``."""

    endpoint_variable: str
    handles: Callable[[HttpRequest], bool]
    serve: Callable[[HttpRequest, ModelDirectory], HttpResponse]
    demo_context: Callable[[str, Sequence[str]], dict[str, Any]]  # (model id, class names) -> context keys
    model_id: Callable[[str], str]  # a local model's name -> the id the stack calls it by (endpoint name, ARN)

    @property
    def stand_in_id(self) -> str:
        return self.model_id(STAND_IN_ID)


def json_response(status: int, payload: Any, content_type: str, **headers: str) -> HttpResponse:
    return HttpResponse(status, json.dumps(payload).encode(), {"Content-Type": content_type, **headers})
