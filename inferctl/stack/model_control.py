"""``inferctl model``: the configured model's status, start and stop, for the deployed or embedded stack.

The model is the one the inference function is configured with now (its live environment), through the
backend's control plane (``BackendSpec.lifecycle``). "Since" and the cost so far today come from what the
model controller remembers (its SSM parameter): when it first saw the model in its current state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from inferctl.pricing import PRICES
from inferctl.stack.configuration import read_live
from inferctl.stack.errors import OperationFailed
from inferctl.stack.target import Target
from lambdas.contract.backends.control import READY, STARTING, STOPPED, ModelControl, ModelStatus, NotSupported
from lambdas.contract.rules import ConfigError
from lambdas.contract.settings import Settings
from lambdas.controller.decide import Memory, not_configured

POLL_SECONDS = 30.0  # boto3's project_version_running waiter polls this often: the longest wait between checks
FIRST_POLL_SECONDS = 1.0  # the first check, then twice as long each time up to POLL_SECONDS


@dataclass(frozen=True)
class StatusReport:
    backend: str
    status: ModelStatus
    since: float | None  # epoch seconds the model has been in this state; None: not known
    cost_today: float | None  # USD so far today (UTC) while it runs; None: not known or not billed by the hour
    cost_basis: str = ""  # how the cost is reckoned, or why there is none

    def lines(self) -> list[str]:
        status = self.status
        rows = [
            ("backend", self.backend),
            ("model", status.model_id or "(not configured)"),
            ("state", f"{status.state} ({status.service_status})"),
        ]
        if status.capacity:
            rows.append(("capacity", ", ".join(f"{key} {value}" for key, value in status.capacity.items())))
        if self.since is not None:
            rows.append(("since", datetime.fromtimestamp(self.since, UTC).isoformat(timespec="seconds")))
        if status.detail:
            rows.append(("detail", status.detail))
        if self.cost_today is not None:
            rows.append(("cost today", f"USD {self.cost_today:.2f} ({self.cost_basis})"))
        elif self.cost_basis:
            rows.append(("cost today", self.cost_basis))
        return [f"{name:<10} {value}" for name, value in rows]

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model_id": self.status.model_id,
            "state": self.status.state,
            "service_status": self.status.service_status,
            "capacity": dict(self.status.capacity),
            "detail": self.status.detail or None,
            "since": datetime.fromtimestamp(self.since, UTC).isoformat(timespec="seconds") if self.since else None,
            "cost_today_usd": None if self.cost_today is None else round(self.cost_today, 4),
            "cost_basis": self.cost_basis or None,
        }


def control(target: Target) -> tuple[Settings, ModelControl]:
    """The live configuration's backend settings and its model's control plane; ConfigError without a model."""
    settings = Settings.from_env(read_live(target).environment)
    settings.require_model()
    lifecycle = settings.spec.lifecycle
    return settings, lifecycle.control(settings.model, target.client(lifecycle.service))


def controller_memory(target: Target) -> Memory:
    name = target.outputs.get("ControllerStateParameter")
    if not name:
        return Memory()
    try:
        return Memory.from_json(target.client("ssm").get_parameter(Name=name)["Parameter"]["Value"])
    except Exception:  # noqa: BLE001 - status still works without what the controller remembers
        return Memory()


def status(target: Target, price: float | None = None, now: float | None = None) -> StatusReport:
    """The model's state and, while it runs, what it has cost so far today (UTC) at the list price (``price``:
    USD per inference-unit hour or per instance hour instead)."""
    now = time.time() if now is None else now
    try:
        settings, model = control(target)
    except ConfigError as exc:
        live = read_live(target).environment.get("BACKEND", "rekognition")
        return StatusReport(live, not_configured(str(exc)), None, None)
    found = model.describe()
    memory = controller_memory(target)
    since = memory.state_since if memory.state == found.state and memory.state_since else found.since
    midnight = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    hours_today = None if since is None else (now - max(since, midnight)) / 3600
    if found.state != READY:
        basis = "nothing while it is not running (earlier runs today are not remembered)"
        return StatusReport(settings.backend, found, since, 0.0 if found.can_start_stop else None, basis)
    capacity = found.capacity
    if "MinInferenceUnits" in capacity or found.can_start_stop:
        units = int(capacity.get("MinInferenceUnits", 1))
        rate = PRICES.rekognition_unit_hour if price is None else price
        return _hourly(settings.backend, found, since, hours_today, units, "inference unit", rate)
    if "InstanceType" in capacity:
        instance, count = str(capacity["InstanceType"]), int(capacity.get("InstanceCount", 1))
        listed = PRICES.sagemaker_instance_hour.get(instance) if price is None else price
        if listed is None:
            basis = f"no list price for {instance} in inferctl/pricing.py: pass --price (USD per instance hour)"
            return StatusReport(settings.backend, found, since, None, basis)
        return _hourly(settings.backend, found, since, hours_today, count, instance, listed)
    if "ServerlessMemoryMB" in capacity:
        basis = "billed per request (serverless): `inferctl cost` prices what it served"
        return StatusReport(settings.backend, found, since, None, basis)
    return StatusReport(settings.backend, found, since, None, "not known for this capacity")


def _hourly(
    backend: str, found: ModelStatus, since: float | None, hours: float | None, count: int, unit: str, rate: float
) -> StatusReport:
    if hours is None:
        return StatusReport(backend, found, since, None, "running since a time not known: no cost today")
    basis = f"{count} {unit}{'s' if count != 1 else ''} x {hours:.2f} h at USD {rate:g} an hour"
    return StatusReport(backend, found, since, count * hours * rate, basis)


def start(
    target: Target,
    units: int,
    wait: bool = True,
    progress: Callable[[str], None] = lambda line: None,
    poll_seconds: float = POLL_SECONDS,
    timeout_seconds: float = 3600.0,
) -> ModelStatus:
    """Start the model; with ``wait``, poll until it is READY (Ctrl-C stops waiting, not the start): after a second,
    then twice as long each time, at most ``poll_seconds`` apart (a model that starts in seconds, as the embedded
    one does, is seen running in seconds, not after the 30 s a fixed poll takes; one that takes AWS's minutes costs
    a few more status checks)."""
    _, model = control(target)
    current = model.describe()
    if current.state not in (READY, STARTING):
        if current.state != STOPPED:
            raise ConfigError("model", f"cannot start a model that is {current.state} ({current.service_status})")
        _do(model.start, units)
        progress(f"start requested with {units} inference unit(s)")
    deadline = time.monotonic() + timeout_seconds
    started = time.monotonic()
    interval = min(FIRST_POLL_SECONDS, poll_seconds)
    while wait:
        current = model.describe()
        progress(f"{current.state} ({current.service_status}) after {time.monotonic() - started:.0f} s")
        if current.state != STARTING or time.monotonic() > deadline:
            break
        time.sleep(interval)
        interval = min(interval * 2, poll_seconds)
    return current if wait else model.describe()


def stop(target: Target) -> ModelStatus:
    """Stop a running model; one that is starting is refused (the services cannot stop it then), one that is
    already stopped or stopping is left as it is."""
    _, model = control(target)
    current = model.describe()
    if current.state == STARTING:
        raise OperationFailed(
            f"model {current.model_id} is {current.service_status}: it can be stopped once it runs "
            "(`inferctl model start` waits for that; `inferctl model status` shows it)"
        )
    if current.state == READY:
        _do(model.stop)
        return model.describe()
    return current


def _do(action: Callable[..., None], *args: Any) -> None:
    try:
        action(*args)
    except NotSupported as exc:
        raise ConfigError("model", str(exc)) from None
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
        raise OperationFailed(
            "the model is changing state already (ResourceInUseException): `inferctl model status` shows where "
            "it is; try again once it has settled"
        ) from None
