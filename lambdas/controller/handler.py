"""The model controller: a small function the stack runs every minute (EventBridge schedule).

It reads the inference function's live configuration (so a model set with ``update-function-configuration``
counts as much as one deployed), the model's status from its service's control plane, the queue's backlog
and the SQS trigger's state; ``lifecycle.decide`` says what to do; it pauses or resumes the trigger, starts
or stops the model (auto mode), remembers what it saw in SSM, and logs and counts every decision.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.contract.backends.control import ModelControl, ModelStatus
from lambdas.contract.rules import ConfigError
from lambdas.contract.settings import Settings
from lambdas.controller.decide import START, STOP, Decision, Memory, Observation, decide, not_configured
from lambdas.controller.queue import queue_depth, refresh_queue
from lambdas.controller.settings import ControllerSettings

logger = Logger(service="model-controller")
metrics = Metrics(service="model-controller")

ENABLED_STATES = ("Enabled", "Enabling", "Updating", "Creating")


@dataclass
class Clients:
    lambda_: Any
    sqs: Any
    ssm: Any
    control: Callable[[str], Any]  # boto3 client name -> client (the model service's control plane)


def observe_model(function_env: dict[str, str], clients: Clients) -> tuple[ModelControl | None, ModelStatus]:
    """The configured model's control plane (None without a model) and its status, from the function's live
    environment."""
    try:
        settings = Settings.from_env(function_env)
        settings.require_model()
    except ConfigError as exc:
        return None, not_configured(str(exc))
    lifecycle = settings.spec.lifecycle
    control = lifecycle.control(settings.model, clients.control(lifecycle.service))
    return control, control.describe()


def read_memory(ssm: Any, name: str | None) -> Memory:
    if not name:
        return Memory()
    try:
        return Memory.from_json(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return Memory()


def tick(settings: ControllerSettings, clients: Clients, now: float | None = None) -> Decision:
    """One look and one decision, applied."""
    assert settings.function_name
    assert settings.queue_url
    assert settings.mapping_id
    now = time.time() if now is None else now
    configuration = clients.lambda_.get_function_configuration(FunctionName=settings.function_name)
    function_env = dict(configuration.get("Environment", {}).get("Variables", {}))
    control, status = observe_model(function_env, clients)
    waiting, in_flight, retention = queue_depth(clients.sqs, settings.queue_url)
    mapping = clients.lambda_.get_event_source_mapping(UUID=settings.mapping_id)
    memory = read_memory(clients.ssm, settings.state_parameter)
    seen = Observation(
        model=status,
        waiting=waiting,
        in_flight=in_flight,
        trigger_enabled=mapping.get("State") in ENABLED_STATES,
        now=now,
        retention_seconds=retention,
    )
    decision = decide(seen, memory, settings.policy)
    # Pause before a stop, resume only when ready: images never meet a model that cannot answer.
    if decision.trigger_changed:
        clients.lambda_.update_event_source_mapping(UUID=settings.mapping_id, Enabled=decision.trigger_enabled)
    if decision.action is not None:
        assert control is not None  # decide() starts or stops only a configured model
        if decision.action == START:
            control.start(settings.start_units)
        elif decision.action == STOP:
            control.stop()
    if decision.refresh:
        # The trigger is off, so nothing else receives: the sweep sees every waiting message. One sweep can take
        # several runs; it is complete when it meets its own copies or an empty queue.
        sweep = decision.memory.sweep or f"sweep-{int(now)}"
        count, complete = refresh_queue(clients.sqs, settings.queue_url, sweep)
        memory_after = replace(decision.memory, sweep=None if complete else sweep)
        if complete:
            memory_after = replace(memory_after, refreshed_at=now)
        decision = replace(decision, memory=memory_after, refreshed=count)
    if settings.state_parameter and decision.memory != memory:
        clients.ssm.put_parameter(
            Name=settings.state_parameter, Value=decision.memory.to_json(), Type="String", Overwrite=True
        )
    return decision


def boto3_clients() -> Clients:
    import boto3

    @functools.cache  # one client per service for the execution environment's life, as the others
    def control(service: str) -> Any:
        return boto3.client(service)  # type: ignore[call-overload]

    return Clients(lambda_=boto3.client("lambda"), sqs=boto3.client("sqs"), ssm=boto3.client("ssm"), control=control)


_clients: Clients | None = None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    global _clients
    settings = ControllerSettings.from_env(os.environ)
    _clients = _clients or boto3_clients()
    decision = tick(settings, _clients)
    state = decision.memory.state or "UNKNOWN"
    logger.info(
        "Decision",
        extra={
            "model_state": state,
            "trigger_enabled": decision.trigger_enabled,
            "trigger_changed": decision.trigger_changed,
            "action": decision.action,
            "reason": decision.reason,
            "refreshed": decision.refreshed,
        },
    )
    metrics.add_metric(name="ModelReady", unit=MetricUnit.Count, value=1 if state == "READY" else 0)
    if decision.trigger_changed:
        name = "TriggerResumed" if decision.trigger_enabled else "TriggerPaused"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ImagesWaiting", unit=MetricUnit.Count, value=decision.waiting)
    if decision.refreshed:
        metrics.add_metric(name="ImagesRefreshed", unit=MetricUnit.Count, value=decision.refreshed)
    if decision.action:
        names = {START: "ModelStarts", STOP: "ModelStops"}
        metrics.add_metric(name=names[decision.action], unit=MetricUnit.Count, value=1)
    return {"state": state, "triggerEnabled": decision.trigger_enabled, "action": decision.action}
