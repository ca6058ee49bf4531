"""Lambda entry point: SQS batch of S3 notifications in, partial batch response out.

Thin by design: Powertools decorators, the batch processor, and one call into ``Pipeline``. Everything the
function needs is built once per container (``runtime()``), from settings validated at the first invoke.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from . import errors
from .backends import InferenceBackend, build_backend
from .concurrency import ConcurrentBatchProcessor
from .errors import TransientError
from .pipeline import Outcome, Pipeline, Storage
from .rules import ConfigError
from .settings import Settings, tracing_enabled
from .storage import S3Storage
from .thresholds import Thresholds
from .tracing import make_tracing

logger = Logger()
tracing = make_tracing(tracing_enabled())
metrics = Metrics()

# Records still waiting when less than this remains are returned as failures rather than cut off mid-write:
# 10 s, or a quarter of the invocation's time for short timeouts. Lambda runs one invocation at a time per
# execution environment, so the margin of the current invocation can live in a module variable.
SAFETY_MARGIN_MS = 10_000
_margin_ms = SAFETY_MARGIN_MS


class PowertoolsTelemetry:
    """Pipeline counts and latencies as CloudWatch EMF metrics. Thread-safe: records run concurrently."""

    def __init__(self, sink: Metrics) -> None:
        self._sink = sink
        self._lock = threading.Lock()

    def outcome(self, status: str, code: str | None = None) -> None:
        names = {"ok": "ImagesProcessed", "error": "ImagesFailed", "retry": "ImagesRetried"}
        with self._lock:
            self._sink.add_metric(name=names.get(status, f"Messages_{status}"), unit=MetricUnit.Count, value=1)
            if code:
                self._sink.add_metric(name=f"Error_{code}", unit=MetricUnit.Count, value=1)

    def detection(self, labels_found: int, latency_ms: float) -> None:
        with self._lock:
            self._sink.add_metric(name="LabelsFound", unit=MetricUnit.Count, value=labels_found)
            self._sink.add_metric(name="BackendLatency", unit=MetricUnit.Milliseconds, value=latency_ms)


@dataclass
class Runtime:
    settings: Settings
    pipeline: Pipeline
    processor: ConcurrentBatchProcessor


def build_runtime(
    settings: Settings, backend: InferenceBackend | None = None, storage: Storage | None = None
) -> Runtime:
    """Wire the pipeline. Real adapters are created only for what is not injected."""
    pipeline = Pipeline(
        input_prefix=settings.input_prefix,
        image_suffixes=settings.image_suffixes,
        thresholds=Thresholds(settings.min_confidence, settings.label_thresholds),
        backend=backend or build_backend(settings),
        storage=storage or S3Storage(kms_key_arn=settings.result_kms_key_arn),
        telemetry=PowertoolsTelemetry(metrics),
        log=logger,
    )
    processor = ConcurrentBatchProcessor(max_workers=settings.record_concurrency, raise_on_entire_batch_failure=False)
    return Runtime(settings=settings, pipeline=pipeline, processor=processor)


@cache
def runtime() -> Runtime:
    """Built on the first invoke of a container and reused: settings, clients, thread pool."""
    settings = Settings.from_env()
    logger.info(
        "Configured",
        extra={"backend": settings.backend, "model_id": settings.model_id, "min_confidence": settings.min_confidence},
    )
    return build_runtime(settings)


def _deadline_passed(context: LambdaContext | None) -> bool:
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return False
    return bool(context.get_remaining_time_in_millis() < _margin_ms)


def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> list[Outcome]:
    logger.thread_safe_append_keys(message_id=record.message_id)
    receive_count = record.attributes.approximate_receive_count
    if _deadline_passed(lambda_context):
        logger.warning(
            "Not enough time left; returning the record for redelivery", extra={"error_code": errors.OUT_OF_TIME}
        )
        raise TransientError(errors.OUT_OF_TIME, "not enough time left in this invocation")
    with tracing.record_segment("## record") as subsegment:
        subsegment.put_annotation("message_id", record.message_id)
        try:
            return runtime().pipeline.handle_body(record.body)
        except TransientError as exc:
            logger.warning(
                "Record failed; SQS will redeliver it",
                extra={"error_code": exc.code, "error": exc.message, "receive_count": receive_count},
            )
            raise


@logger.inject_lambda_context(clear_state=True)
@tracing.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    global _margin_ms
    if hasattr(context, "get_remaining_time_in_millis"):
        _margin_ms = min(SAFETY_MARGIN_MS, context.get_remaining_time_in_millis() // 4)
    try:
        processor = runtime().processor
    except ConfigError as exc:
        # Every record of the batch fails and is retried, then dead-lettered: nothing is lost while an
        # operator fixes the variable, and the DLQ can be redriven afterwards.
        logger.error(
            "Invalid configuration; the whole batch will be retried", extra={"setting": exc.setting, "error": str(exc)}
        )
        raise
    response: dict[str, Any] = dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
    return response
