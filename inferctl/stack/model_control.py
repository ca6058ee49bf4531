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

from inferctl.pricing import PRICES
from inferctl.stack.configuration import read_live
from inferctl.stack.target import Target
from lambdas.controller.decide import Memory, not_configured
from lambdas.inference.backends.control import READY, STARTING, STOPPED, ModelControl, ModelStatus, NotSupported
from lambdas.inference.core.rules import ConfigError
from lambdas.inference.settings import Settings

POLL_SECONDS = 30.0  # boto3's project_version_running waiter polls this often


@dataclass(frozen=True)
class StatusReport:
    backend: str
    status: ModelStatus
    since: float | None  # epoch seconds the controller first saw this state; None: not known
    running_hours_today: float | None
    cost_today: float | None
    price: float | None

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
        if self.cost_today is not None and self.price is not None:
            rows.append(
                (
                    "cost today",
                    f"USD {self.cost_today:.2f} ({self.running_hours_today:.2f} unit-hours at USD {self.price:g})",
                )
            )
        return [f"{name:<10} {value}" for name, value in rows]


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


def status(target: Target, price: float = PRICES.rekognition_unit_hour, now: float | None = None) -> StatusReport:
    now = time.time() if now is None else now
    try:
        settings, model = control(target)
    except ConfigError as exc:
        live = read_live(target).environment.get("BACKEND", "rekognition")
        return StatusReport(live, not_configured(str(exc)), None, None, None, None)
    found = model.describe()
    memory = controller_memory(target)
    since = memory.state_since if memory.state == found.state else None
    hours = cost = None
    if found.can_start_stop and found.state == READY and since is not None:
        midnight = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        units = int(found.capacity.get("MinInferenceUnits", 1))
        hours = (now - max(since, midnight)) / 3600 * units
        cost = hours * price
    elif found.can_start_stop and found.state != READY:
        hours, cost = 0.0, 0.0  # not running now (earlier runs today are not remembered)
    return StatusReport(settings.backend, found, since, hours, cost, price if found.can_start_stop else None)


def start(
    target: Target,
    units: int,
    wait: bool = True,
    progress: Callable[[str], None] = lambda line: None,
    poll_seconds: float = POLL_SECONDS,
    timeout_seconds: float = 3600.0,
) -> ModelStatus:
    """Start the model; with ``wait``, poll until it is READY (Ctrl-C stops waiting, not the start)."""
    _, model = control(target)
    current = model.describe()
    if current.state not in (READY, STARTING):
        if current.state != STOPPED:
            raise ConfigError("model", f"cannot start a model that is {current.state} ({current.service_status})")
        _do(model.start, units)
        progress(f"start requested with {units} inference unit(s)")
    deadline = time.monotonic() + timeout_seconds
    started = time.monotonic()
    while wait:
        current = model.describe()
        progress(f"{current.state} ({current.service_status}) after {time.monotonic() - started:.0f} s")
        if current.state != STARTING or time.monotonic() > deadline:
            break
        time.sleep(poll_seconds)
    return current if wait else model.describe()


def stop(target: Target) -> ModelStatus:
    _, model = control(target)
    current = model.describe()
    if current.state == READY:
        _do(model.stop)
        return model.describe()
    return current


def _do(action: Callable[..., None], *args: Any) -> None:
    try:
        action(*args)
    except NotSupported as exc:
        raise ConfigError("model", str(exc)) from None
