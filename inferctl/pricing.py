"""What 1,000 images cost: the serverless part (from measured calls per image) and the model (from a traffic
profile), at the dated list prices below. Pure arithmetic: ``make bench`` feeds it measured counts, and
``inferctl cost`` feeds it a deployed stack's CloudWatch metrics.

Prices: USD, us-east-1, on-demand list prices without free tiers, as published on the AWS pricing pages
named in ``SOURCES`` and last checked on ``PRICES_AS_OF``. This machine cannot reach AWS: confirm the region's
prices before quoting a figure, and change the table (and its date) when they move.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PRICES_AS_OF = "2025-06-01"
SOURCES = (
    "https://aws.amazon.com/lambda/pricing/ (Arm: GB-second, requests)",
    "https://aws.amazon.com/sqs/pricing/ (standard queue requests, per 64 KB chunk)",
    "https://aws.amazon.com/s3/pricing/ (S3 Standard PUT and GET requests)",
    "https://aws.amazon.com/kms/pricing/ (symmetric key requests)",
    "https://aws.amazon.com/cloudwatch/pricing/ (logs ingestion, custom metrics)",
    "https://aws.amazon.com/rekognition/pricing/ (Custom Labels inference, per inference-unit hour)",
    "https://aws.amazon.com/sagemaker/pricing/ (real-time ml.m5.xlarge; serverless per GB-second, data)",
    "https://aws.amazon.com/firehose/pricing/ (Direct PUT ingestion per GB in 5 KB records; format conversion)",
    "https://aws.amazon.com/athena/pricing/ (SQL queries per TB scanned, 10 MB minimum per query)",
    "https://aws.amazon.com/s3/pricing/ (S3 Inventory per million objects listed; S3 Standard storage)",
    "https://aws.amazon.com/step-functions/pricing/ (standard state transitions; express requests, GB-second)",
)


@dataclass(frozen=True)
class Prices:
    lambda_gb_second: float = 0.0000133334  # Arm
    lambda_request: float = 0.20 / 1_000_000
    sqs_request: float = 0.40 / 1_000_000
    s3_put: float = 0.005 / 1_000
    s3_get: float = 0.0004 / 1_000
    kms_request: float = 0.03 / 10_000
    logs_gb: float = 0.50
    metric_month: float = 0.30
    rekognition_unit_hour: float = 4.00
    sagemaker_instance_hour: Mapping[str, float] = field(
        default_factory=lambda: {"ml.m5.large": 0.115, "ml.m5.xlarge": 0.23, "ml.g4dn.xlarge": 0.736}
    )
    sagemaker_serverless_gb_second: float = 0.00002
    sagemaker_data_gb: float = 0.016
    # The outcome table (stacks/analytics.py)
    firehose_gb: float = 0.029  # Direct PUT ingestion, each record billed in 5 KB increments
    firehose_conversion_gb: float = 0.018  # JSON to Parquet, on the same billed (5 KB-rounded) volume
    firehose_record_increment: int = 5 * 1024
    athena_tb: float = 5.00  # per TB scanned ...
    athena_minimum_bytes: int = 10 * 1024 * 1024  # ... at least 10 MB per query, rounded up to the MB
    inventory_million_objects: float = 0.0025
    s3_storage_gb_month: float = 0.023
    sfn_standard_transition: float = 0.025 / 1_000
    sfn_express_request: float = 1.00 / 1_000_000


PRICES = Prices()
GB = 1024**3
TB = 1024**4
MB = 1024**2


def athena_query_cost(scanned_bytes: int, prices: Prices = PRICES) -> float:
    """What one Athena query costs: its bytes scanned rounded up to the MB, at least 10 MB."""
    billed = max(prices.athena_minimum_bytes, -(-scanned_bytes // MB) * MB)
    return billed / TB * prices.athena_tb


def firehose_cost(record_bytes: float, records: float, prices: Prices = PRICES) -> float:
    """Firehose's ingestion and Parquet conversion of ``records`` rows of ``record_bytes`` each."""
    increments = -(-int(record_bytes) // prices.firehose_record_increment) or 1
    billed_gb = records * increments * prices.firehose_record_increment / GB
    return billed_gb * (prices.firehose_gb + prices.firehose_conversion_gb)


@dataclass(frozen=True)
class PerImage:
    """What one image costs the serverless part, as measured: requests per service, Lambda time, log bytes."""

    lambda_seconds: float  # billed duration per image (a batch's duration shared by its records)
    lambda_requests: float  # invocations per image (batches; result notifications included)
    sqs_requests: float
    s3_puts: float
    s3_gets: float  # GET and HEAD/List are billed alike (HEAD, LIST: PUT class for LIST, ignored here)
    kms_requests: float
    log_bytes: float
    memory_mb: int

    def cost(self, prices: Prices = PRICES) -> dict[str, float]:
        return {
            "lambda": self.lambda_seconds * self.memory_mb / 1024 * prices.lambda_gb_second
            + self.lambda_requests * prices.lambda_request,
            "sqs": self.sqs_requests * prices.sqs_request,
            "s3": self.s3_puts * prices.s3_put + self.s3_gets * prices.s3_get,
            "kms": self.kms_requests * prices.kms_request,
            "logs": self.log_bytes / GB * prices.logs_gb,
        }


# Fixed costs of the stack per day, whatever the traffic: the SQS trigger's long polls (Lambda keeps at least
# 5 pollers, each a 20 s ReceiveMessage), the controller's run every minute (about 0.3 s at 256 MB), and the
# custom metrics (EMF) the function and the controller publish.
TRIGGER_POLLS_PER_DAY = 5 * 3 * 60 * 24
CONTROLLER_RUNS_PER_DAY = 60 * 24
CONTROLLER_SECONDS, CONTROLLER_MEMORY_GB = 0.3, 0.25
CUSTOM_METRICS = 12


def fixed_per_day(prices: Prices = PRICES) -> dict[str, float]:
    return {
        "trigger polls (sqs)": TRIGGER_POLLS_PER_DAY * prices.sqs_request,
        "controller (lambda)": CONTROLLER_RUNS_PER_DAY
        * (CONTROLLER_SECONDS * CONTROLLER_MEMORY_GB * prices.lambda_gb_second + prices.lambda_request),
        "controller calls (sqs)": CONTROLLER_RUNS_PER_DAY * prices.sqs_request,
        "metrics (cloudwatch)": CUSTOM_METRICS * prices.metric_month / 30,
    }


@dataclass(frozen=True)
class Profile:
    """A day of traffic: ``bursts`` evenly spaced bursts of ``images / bursts`` images each."""

    name: str
    images: int
    bursts: int

    @property
    def gap_seconds(self) -> float:
        return 24 * 3600 / self.bursts


PROFILES = (
    Profile("1,000/day in one burst", 1000, 1),
    Profile("1,000/day in 10 hourly bursts", 1000, 10),
    Profile("1,000/day steady trickle", 1000, 1000),
)


@dataclass(frozen=True)
class AutoMode:
    """Auto mode's timings: a start (billed from the request, to be safe), the idle time before a stop, the
    controller's schedule (a burst waits up to one period before the start is asked for)."""

    start_minutes: float = 10.0
    idle_minutes: float = 15.0
    schedule_minutes: float = 1.0


def rekognition_model_hours(profile: Profile, units: int, calls_per_second: float, auto: AutoMode | None) -> float:
    """Inference-unit hours per day: always on (24 h), or in auto mode the running time each burst needs."""
    if auto is None:
        return 24.0 * units
    per_burst_images = profile.images / profile.bursts
    busy_seconds = per_burst_images / calls_per_second
    up_seconds = busy_seconds + auto.idle_minutes * 60
    if up_seconds >= profile.gap_seconds:  # the next burst comes before the model would stop: never stops
        return 24.0 * units
    seconds = (auto.schedule_minutes + auto.start_minutes) * 60 + up_seconds
    return min(24.0, profile.bursts * seconds / 3600) * units


def sagemaker_realtime_per_day(instance_type: str, count: int, prices: Prices = PRICES) -> float:
    return 24.0 * count * prices.sagemaker_instance_hour[instance_type]


def sagemaker_serverless_per_image(
    memory_mb: int, inference_seconds: float, payload_bytes: float, prices: Prices = PRICES
) -> float:
    return memory_mb / 1024 * inference_seconds * prices.sagemaker_serverless_gb_second + (
        payload_bytes / GB * prices.sagemaker_data_gb
    )


def per_thousand(per_day: float, images_per_day: int) -> float:
    return per_day * 1000 / images_per_day


# --- a deployed stack's spend, from its CloudWatch metrics -----------------------------------------------------

# What the function cannot see in CloudWatch, per image, from ``make bench`` row 7: S3 requests (the version
# probe, the header read, Rekognition's own GET; the result PUT) and KMS requests.
S3_GETS_PER_IMAGE, S3_PUTS_PER_IMAGE, KMS_PER_IMAGE = 3.0, 1.0, 0.05


@dataclass(frozen=True)
class Spend:
    days: float
    images: float
    parts: dict[str, float]  # USD over the period

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    def per_thousand(self) -> dict[str, float]:
        return {name: value * 1000 / self.images for name, value in self.parts.items()} if self.images else {}


def _sum(cloudwatch: Any, namespace: str, name: str, dimensions: dict[str, str], start: Any, end: Any) -> float:
    response = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": key, "Value": value} for key, value in dimensions.items()],
        StartTime=start,
        EndTime=end,
        Period=86_400,
        Statistics=["Sum"],
    )
    return float(sum(point["Sum"] for point in response.get("Datapoints", [])))


def spend_from_metrics(
    cloudwatch: Any,
    *,
    function_name: str,
    memory_mb: int,
    queue_name: str,
    backend: str,
    units: int,
    days: float,
    end: Any = None,
    prices: Prices = PRICES,
) -> Spend:
    """The period's spend: Lambda invocations and duration, SQS messages, images (the function's metrics),
    minutes the model was ready (the controller's ModelReady, one sample a minute); S3 and KMS from the
    per-image counts above. A SageMaker endpoint's instances are added by the caller (``inferctl.stack.spend``),
    which knows its capacity; a serverless endpoint bills per request and is not shown."""
    from datetime import UTC, datetime, timedelta

    end = end or datetime.now(UTC)
    start = end - timedelta(days=days)
    function = {"FunctionName": function_name}
    invocations = _sum(cloudwatch, "AWS/Lambda", "Invocations", function, start, end)
    duration_ms = _sum(cloudwatch, "AWS/Lambda", "Duration", function, start, end)
    queue = {"QueueName": queue_name}
    sqs_requests = (
        sum(
            _sum(cloudwatch, "AWS/SQS", name, queue, start, end)
            for name in ("NumberOfMessagesSent", "NumberOfEmptyReceives")
        )
        + 2 * invocations
    )  # a receive and a delete per batch
    service = {"service": "image-inference"}
    images = sum(
        _sum(cloudwatch, "ImageInference", name, service, start, end) for name in ("ImagesProcessed", "ImagesFailed")
    )
    ready_minutes = _sum(cloudwatch, "ImageInference", "ModelReady", {"service": "model-controller"}, start, end)
    parts = {
        "lambda": duration_ms / 1000 * memory_mb / 1024 * prices.lambda_gb_second + invocations * prices.lambda_request,
        "sqs": sqs_requests * prices.sqs_request,
        "s3": images * (S3_GETS_PER_IMAGE * prices.s3_get + S3_PUTS_PER_IMAGE * prices.s3_put),
        "kms": images * KMS_PER_IMAGE * prices.kms_request,
    }
    if backend == "rekognition":
        parts["model (unit-hours)"] = ready_minutes / 60 * units * prices.rekognition_unit_hour
    return Spend(days=days, images=images, parts=parts)
