"""Lambda entry point: SQS batch of S3 notifications in, partial batch response out.

Thin by design: Powertools decorators, the batch runner, and one call into ``Pipeline`` per record.
Everything the function needs is built once per execution environment (``runtime()``), from settings
validated at the first invoke.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.inference import deadline, outcome_stream
from lambdas.inference.backends import ClientOptions, InferenceBackend, spec
from lambdas.inference.batch import BatchRunner, SqsRecord
from lambdas.inference.challenger import Challenger
from lambdas.inference.challenger import build as build_challenger
from lambdas.inference.core import errors, events
from lambdas.inference.core.errors import ProcessingError, TransientError
from lambdas.inference.core.rules import ConfigError
from lambdas.inference.images.budget import MemoryBudget, budget_bytes
from lambdas.inference.outcome_stream import OutcomeStream
from lambdas.inference.pacing import RateLimiter
from lambdas.inference.pipeline import BatchScope, Pipeline, Storage
from lambdas.inference.settings import Settings, tracing_enabled
from lambdas.inference.source_queue import Acknowledgements, SourceQueue, watching
from lambdas.inference.storage import S3Storage
from lambdas.inference.tracing import make_tracing

logger = Logger()
tracing = make_tracing(tracing_enabled())
metrics = Metrics()

# Records still waiting when less than this remains are returned as failures rather than cut off mid-write:
# 10 s, or a quarter of the invocation's time for short timeouts.
SAFETY_MARGIN_MS = 10_000
# The batch's response leaves this long before the timeout (a second, or 5% of a short invocation), with every
# record still running reported failed.
RESPONSE_MARGIN_SECONDS = 1.0
RESPONSE_MARGIN_SHARE = 0.05
# The batch's rows go to the outcome stream after its records: the call's time is kept from the records'.
STREAM_SECONDS = float(outcome_stream.WORST_SECONDS)


def metric_name(label: str) -> str:
    """A label as part of a CloudWatch metric name (letters, digits and ._- kept, the rest as _; 200 at most)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", label)[:200]


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

    def labels(self, accepted: list[str], near: list[str]) -> None:
        """Per label: images that accepted it, and images with a candidate just below its threshold (their share
        of ImagesProcessed is the drift signal `inferctl drift` and the NearThresholdShare alarm read)."""
        with self._lock:
            for name in accepted:
                self._sink.add_metric(name=f"Accepted_{metric_name(name)}", unit=MetricUnit.Count, value=1)
            for name in near:
                self._sink.add_metric(name=f"NearThreshold_{metric_name(name)}", unit=MetricUnit.Count, value=1)
            if near:
                self._sink.add_metric(name="NearThresholdImages", unit=MetricUnit.Count, value=1)

    def challenger(self, section: dict[str, Any]) -> None:
        with self._lock:
            if section.get("status") == "ok":
                self._sink.add_metric(name="ChallengerImages", unit=MetricUnit.Count, value=1)
                latency = float(section.get("latency_ms") or 0.0)
                self._sink.add_metric(name="ChallengerLatency", unit=MetricUnit.Milliseconds, value=latency)
            else:
                self._sink.add_metric(name="ChallengerErrors", unit=MetricUnit.Count, value=1)
                code = (section.get("error") or {}).get("code")
                if code:
                    self._sink.add_metric(name=f"ChallengerError_{code}", unit=MetricUnit.Count, value=1)


@dataclass
class Runtime:
    pipeline: Pipeline
    runner: BatchRunner
    queue: SourceQueue | None = None
    stream: OutcomeStream | None = None


def _unexpected(record: SqsRecord, exc: Exception) -> None:
    logger.exception(
        "Unexpected error; the message will be redelivered",
        extra={"error_code": errors.UNEXPECTED_ERROR, "error": repr(exc), "message_id": record.message_id},
    )
    with contextlib.suppress(Exception):
        metrics.add_metric(name=f"Error_{errors.UNEXPECTED_ERROR}", unit=MetricUnit.Count, value=1)


def build_backend(settings: Settings, client: object | None = None) -> InferenceBackend:
    """The configured backend's adapter; creates a client for that backend only."""
    return spec(settings.backend).create(settings.model, client_options(settings), client)


def client_options(settings: Settings) -> ClientOptions:
    """How the configured model is called: timeouts, pace and limits from the settings."""
    rate = settings.model_calls_per_second
    return ClientOptions(
        read_timeout=settings.backend_read_timeout_seconds,
        pool_size=settings.record_concurrency,
        pace=RateLimiter(rate) if rate else None,
        call_timeout=settings.backend_call_timeout_seconds,
        max_response_bytes=settings.model_response_max_bytes,
        max_labels=settings.max_labels_per_image,
    )


def _late(record: SqsRecord) -> None:
    logger.warning(
        "Record still running at the end of the invocation; returned for redelivery",
        extra={
            "error_code": errors.OUT_OF_TIME,
            "message_id": record.message_id,
            "object_keys": events.keys_in(record.body),
        },
    )
    with contextlib.suppress(Exception):
        metrics.add_metric(name=f"Error_{errors.OUT_OF_TIME}", unit=MetricUnit.Count, value=1)


def build_runtime(
    settings: Settings,
    backend: InferenceBackend | None = None,
    storage: Storage | None = None,
    challenger: Challenger | None = None,
) -> Runtime:
    """Wire the pipeline. Real adapters are created only for what is not injected."""
    if backend is None:
        settings.require_model()
    if challenger is None:
        challenger = build_challenger(settings.challenger, client_options(settings))
    pipeline = Pipeline(
        budget=MemoryBudget(budget_bytes(settings.memory_mb)),
        input_prefix=settings.input_prefix,
        image_suffixes=settings.image_suffixes,
        thresholds=settings.thresholds,
        backend=backend or build_backend(settings),
        storage=storage
        or S3Storage(kms_key_arn=settings.result_kms_key_arn, read_timeout=settings.storage_read_timeout_seconds),
        telemetry=PowertoolsTelemetry(metrics),
        log=logger,
        challenger=challenger,
        rows=settings.outcome_stream_name is not None,
    )
    runner = BatchRunner(
        settings.record_concurrency, expected=(ProcessingError,), on_unexpected=_unexpected, on_late=_late
    )
    queue = SourceQueue(settings.queue_url, settings.retry_delay_max_seconds) if settings.queue_url else None
    stream = OutcomeStream(settings.outcome_stream_name) if settings.outcome_stream_name else None
    return Runtime(pipeline=pipeline, runner=runner, queue=queue, stream=stream)


# Lambda runs one execution environment per process; the embedded stack runs several in one process and
# binds each poller thread to its own runtime (``bound``).
_bound: ContextVar[Runtime | None] = ContextVar("runtime", default=None)
_process_runtime: Runtime | None = None
_build_lock = threading.Lock()


def runtime() -> Runtime:
    """Built on the first invoke of an execution environment and reused: settings, clients, thread pool."""
    global _process_runtime
    bound = _bound.get()
    if bound is not None:
        return bound
    with _build_lock:
        if _process_runtime is None:
            settings = Settings.from_env()
            logger.info(
                "Configured",
                extra={
                    "backend": settings.backend,
                    "model_id": settings.model_id,
                    "min_confidence": settings.min_confidence,
                },
            )
            _process_runtime = build_runtime(settings)
        return _process_runtime


def reset_runtime() -> None:
    """Forget the process's runtime: the next invoke reads the environment again, like a new environment."""
    global _process_runtime
    with _build_lock:
        _process_runtime = None


@contextlib.contextmanager
def bound(runtime: Runtime) -> Iterator[None]:
    """Invocations in this thread (and its context) use ``runtime``: one emulated execution environment."""
    token = _bound.set(runtime)
    try:
        yield
    finally:
        _bound.reset(token)


def _margin_ms(context: LambdaContext | None) -> int:
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return 0
    return min(SAFETY_MARGIN_MS, context.get_remaining_time_in_millis() // 4)


def record_handler(
    record: SqsRecord,
    context: LambdaContext | None,
    margin_ms: int,
    scope: BatchScope,
    acknowledgements: Acknowledgements | None = None,
) -> None:
    logger.thread_safe_append_keys(message_id=record.message_id)
    if context is not None and margin_ms and context.get_remaining_time_in_millis() < margin_ms:
        logger.warning(
            "Not enough time left; returning the record for redelivery",
            extra={"error_code": errors.OUT_OF_TIME, "object_keys": events.keys_in(record.body)},
        )
        raise TransientError(errors.OUT_OF_TIME, "not enough time left in this invocation")
    with tracing.record_segment("## record") as subsegment:
        subsegment.put_annotation("message_id", record.message_id)
        current = runtime()
        try:
            outcomes = current.pipeline.handle_body(record.body, scope, redelivered=record.receive_count > 1)
        except TransientError as exc:
            delay = _back_off(current, record)
            logger.warning(
                "Record failed; SQS will redeliver it",
                extra={
                    "error_code": exc.code,
                    "error": exc.message,
                    "object_keys": events.keys_in(record.body),
                    "receive_count": record.receive_count,
                    "visible_again_in_seconds": delay,
                },
            )
            raise
        if acknowledgements is not None:
            acknowledgements.finished(record, [outcome.row for outcome in outcomes if outcome.row is not None])


def _back_off(current: Runtime, record: SqsRecord) -> int | None:
    if current.queue is None or not record.receipt_handle:
        return None
    try:
        return current.queue.delay(record.receipt_handle, record.receive_count)
    except Exception as exc:  # noqa: BLE001 - the queue's own visibility timeout still brings it back
        logger.warning("Could not delay the record's redelivery", extra={"error": repr(exc)})
        return None


@logger.inject_lambda_context(clear_state=True)
@tracing.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        current = runtime()
    except ConfigError as exc:
        # Every record of the batch fails and is retried, then dead-lettered: nothing is lost while an
        # operator fixes the variable, and the DLQ can be redriven afterwards.
        logger.error(
            "Invalid configuration; the whole batch will be retried", extra={"setting": exc.setting, "error": str(exc)}
        )
        raise
    margin = _margin_ms(context)
    scope = BatchScope()  # the same object twice in this batch is worked on once
    acknowledgements = _batch(event, current)
    left = _remaining_seconds(context)
    # Records and model calls work until the margin; the batch's response is sent, whatever still runs, a
    # moment before Lambda's timeout would throw every record of the batch back into the queue.
    with watching(acknowledgements), deadline.invocation(None if left is None else left - margin / 1000):
        # The rows are sent after the records, before the response: their call gets its own moment, out of the
        # margin (records' work ends at the margin), at most half of it: a 6 s function still waits for its records.
        respond = min(RESPONSE_MARGIN_SECONDS, (left or 0) * RESPONSE_MARGIN_SHARE)
        rows = min(STREAM_SECONDS, margin / 2000) if current.stream is not None else 0.0
        response: dict[str, Any] = current.runner.process(
            event,
            lambda record: record_handler(record, context, margin, scope, acknowledgements),
            wait_seconds=None if left is None else max(0.0, left - respond - rows),
        )
        _rows_sent(current, acknowledgements, response, _stream_seconds(context, respond))
    return response


def _stream_seconds(context: LambdaContext | None, respond: float) -> float | None:
    """How long the rows' call may take: until the response must go, never more than the call's own worst."""
    left = _remaining_seconds(context)
    return None if left is None else max(0.0, min(STREAM_SECONDS, left - respond))


def _rows_sent(
    current: Runtime, acknowledgements: Acknowledgements, response: dict[str, Any], seconds: float | None
) -> None:
    """The batch's rows in one call to the outcome stream, waiting at most ``seconds``; a record whose row it did
    not take fails and comes back after its back-off (its redelivery finds its document written and sends only the
    row), counted in ``OutcomeRowsFailed``."""
    unsent = acknowledgements.flush(seconds)
    if not unsent:
        return
    failing = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    for record in sorted(unsent, key=lambda record: record.message_id):
        if record.message_id not in failing:
            response["batchItemFailures"].append({"itemIdentifier": record.message_id})
            _back_off(current, record)
    with contextlib.suppress(Exception):
        metrics.add_metric(name="OutcomeRowsFailed", unit=MetricUnit.Count, value=acknowledgements.rows_failed)


def _batch(event: dict[str, Any], current: Runtime) -> Acknowledgements:
    """The batch's acknowledgements, at risk already when a message of it was received before (it may come from a
    batch that was killed). A batch at risk is logged once with its message ids, which ties each message to this
    invocation's request id: what ``inferctl dlq`` reads when an invocation was killed before a record could say why
    (a batch killed at its first receive comes back at risk, and is logged then)."""
    records = event.get("Records") or []
    again = sum(1 for record in records if _receive_count(record) > 1)
    acknowledgements = Acknowledgements(
        current.queue, logger, [str(record.get("messageId")) for record in records], current.stream
    )
    if again:
        acknowledgements.at_risk(f"{again} of its messages were received before")
    return acknowledgements


def _receive_count(record: dict[str, Any]) -> int:
    try:
        return int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        return 1


def _remaining_seconds(context: LambdaContext | None) -> float | None:
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return None
    return float(context.get_remaining_time_in_millis()) / 1000
