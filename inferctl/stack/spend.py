"""What a stack spent: its CloudWatch metrics priced at the dated list prices (``inferctl.pricing``)."""

from __future__ import annotations

from inferctl import pricing
from inferctl.stack.configuration import read_live
from inferctl.stack.target import Target
from lambdas.inference.settings import Settings


def spend(target: Target, *, units: int, days: float) -> pricing.Spend:
    """The stack's spend over the last ``days``, by part, with the images it processed."""
    settings = Settings.from_env(read_live(target).environment)
    configuration = target.client("lambda").get_function_configuration(FunctionName=target.function_name)
    return pricing.spend_from_metrics(
        target.client("cloudwatch"),
        function_name=str(target.function_name),
        memory_mb=int(configuration.get("MemorySize", 1024)),
        queue_name=target.queue_url.rstrip("/").rsplit("/", 1)[-1],
        backend=settings.backend,
        units=units,
        days=days,
    )
