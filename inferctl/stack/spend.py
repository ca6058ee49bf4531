"""What a stack spent: its CloudWatch metrics priced at the dated list prices (``inferctl.pricing``), and a
SageMaker real-time endpoint's instance hours over the period (it bills by the hour, busy or not)."""

from __future__ import annotations

import time
from dataclasses import replace

from inferctl import pricing
from inferctl.stack import model_control
from inferctl.stack.configuration import read_live
from inferctl.stack.target import Target
from lambdas.contract.backends.control import READY
from lambdas.contract.settings import Settings


def spend(target: Target, *, units: int, days: float) -> pricing.Spend:
    """The stack's spend over the last ``days``, by part, with the images it processed."""
    settings = Settings.from_env(read_live(target).environment)
    configuration = target.client("lambda").get_function_configuration(FunctionName=target.function_name)
    found = pricing.spend_from_metrics(
        target.client("cloudwatch"),
        function_name=str(target.function_name),
        memory_mb=int(configuration.get("MemorySize", 1024)),
        queue_name=target.queue_url.rstrip("/").rsplit("/", 1)[-1],
        backend=settings.backend,
        units=units,
        days=days,
    )
    instances = _instance_cost(target, days) if settings.backend == "sagemaker" and settings.model_id else None
    if instances is not None:
        found = replace(found, parts={**found.parts, instances[0]: instances[1]})
    return found


def _instance_cost(target: Target, days: float) -> tuple[str, float] | None:
    """("model (N x TYPE, H h)", USD) for a running real-time endpoint over the period (since it last changed,
    when that is later); None for a serverless endpoint (billed per request) or an unknown instance price."""
    report = model_control.status(target)
    capacity = report.status.capacity
    instance = capacity.get("InstanceType")
    rate = pricing.PRICES.sagemaker_instance_hour.get(str(instance)) if instance else None
    if report.status.state != READY or rate is None:
        return None
    count = int(capacity.get("InstanceCount", 1))
    period = days * 86_400
    hours = min(period, time.time() - report.since if report.since else period) / 3600
    return f"model ({count} x {instance}, {hours:.1f} h)", count * hours * rate
