"""What an execution environment holds, built at its first invoke from settings validated then, and reused by
every invoke after it: the pipeline with its backend, storage and challenger, the batch runner, the source queue
and the outcome stream (``runtime()``). The embedded stack runs several environments in one process and binds
each poller thread to its own (``bound``)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit

from lambdas.contract import errors, events
from lambdas.contract.errors import ProcessingError
from lambdas.contract.outcome_stream import OutcomeStream
from lambdas.contract.pacing import RateLimiter
from lambdas.contract.settings import Settings
from lambdas.inference import collector
from lambdas.inference.backends import ClientOptions, InferenceBackend, adapter
from lambdas.inference.batch import BatchRunner, SqsRecord
from lambdas.inference.images.budget import MemoryBudget, budget_bytes
from lambdas.inference.pipeline import Pipeline, Storage
from lambdas.inference.placement import keep_on_one_cpu
from lambdas.inference.source_queue import SourceQueue
from lambdas.inference.storage import S3Storage
from lambdas.inference.telemetry import PowertoolsTelemetry, logger, metrics

if TYPE_CHECKING:  # loaded only by the stacks that use one
    from lambdas.inference.challenger import Challenger


@dataclass
class Runtime:
    pipeline: Pipeline
    runner: BatchRunner
    queue: SourceQueue | None = None
    stream: OutcomeStream | None = None
    telemetry: PowertoolsTelemetry | None = None  # flushed by the handler once per invocation


def _unexpected(record: SqsRecord, exc: Exception) -> None:
    logger.exception(
        "Unexpected error; the message will be redelivered",
        extra={"error_code": errors.UNEXPECTED_ERROR, "error": repr(exc), "message_id": record.message_id},
    )
    with contextlib.suppress(Exception):
        metrics.add_metric(name=f"Error_{errors.UNEXPECTED_ERROR}", unit=MetricUnit.Count, value=1)


def build_backend(settings: Settings, client: object | None = None) -> InferenceBackend:
    """The configured backend's adapter; creates a client for that backend only."""
    return adapter(settings.backend)(settings.model, client_options(settings), client)


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
    if challenger is None and settings.challenger.enabled:
        from lambdas.inference.challenger import build as build_challenger

        challenger = build_challenger(settings.challenger, client_options(settings))
    telemetry = PowertoolsTelemetry(metrics)
    pipeline = Pipeline(
        budget=MemoryBudget(budget_bytes(settings.memory_mb)),
        input_prefix=settings.input_prefix,
        image_suffixes=settings.image_suffixes,
        thresholds=settings.thresholds,
        backend=backend or build_backend(settings),
        storage=storage
        or S3Storage(kms_key_arn=settings.result_kms_key_arn, read_timeout=settings.storage_read_timeout_seconds),
        telemetry=telemetry,
        log=logger,
        challenger=challenger,
        rows=settings.outcome_stream_name is not None,
    )
    runner = BatchRunner(
        settings.record_concurrency, expected=(ProcessingError,), on_unexpected=_unexpected, on_late=_late
    )
    queue = SourceQueue(settings.queue_url, settings.retry_delay_max_seconds) if settings.queue_url else None
    stream = OutcomeStream(settings.outcome_stream_name) if settings.outcome_stream_name else None
    return Runtime(pipeline=pipeline, runner=runner, queue=queue, stream=stream, telemetry=telemetry)


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
            try:
                settings = Settings.from_env()
                cpu = keep_on_one_cpu()  # before the environment starts a thread: every thread inherits it
                logger.info(
                    "Configured",
                    extra={
                        "backend": settings.backend,
                        "model_id": settings.model_id,
                        "min_confidence": settings.min_confidence,
                        "cpu": cpu,
                    },
                )
                _process_runtime = build_runtime(settings)
            finally:
                collector.resume()  # built, or not buildable: the collector runs again either way
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
