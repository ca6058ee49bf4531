"""A model's lifecycle (its service's control plane): what the model controller and ``inferctl model`` use.
States are normalised across services; READY is the only one in which images should be taken off the queue."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from lambdas.contract.backends.grants import Arns, Grant


class ModelState(StrEnum):
    """A model's state, the same words whatever its service."""

    READY = "READY"
    STARTING = "STARTING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"
    MISSING = "MISSING"
    NOT_CONFIGURED = "NOT_CONFIGURED"


READY, STARTING, STOPPING, STOPPED = ModelState.READY, ModelState.STARTING, ModelState.STOPPING, ModelState.STOPPED
FAILED, MISSING, NOT_CONFIGURED = ModelState.FAILED, ModelState.MISSING, ModelState.NOT_CONFIGURED


class ModelStatus(NamedTuple):
    """What the control plane says about the configured model. ``state`` is one of the normalised states above;
    ``service_status`` is the service's own word (RUNNING, InService...); ``capacity`` describes what runs
    (inference units, instance type and count, serverless memory and concurrency)."""

    model_id: str | None
    state: str
    service_status: str
    capacity: Mapping[str, Any] = {}
    detail: str = ""
    can_start_stop: bool = False
    since: float | None = None  # epoch seconds of the service's last change to the model, where it says

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


class Lifecycle(NamedTuple):
    """How a backend's model is controlled: ``control(settings, client)`` builds the adapter (a boto3 client is
    created when ``client`` is None); ``grants(settings, arns, start_stop)`` are what the controller needs."""

    service: str  # the boto3 client name of the control plane
    control: Callable[[Any, Any], ModelControl]
    grants: Callable[[Any, Arns, bool], tuple[Grant, ...]]
    can_start_stop: bool
