"""Lambda entry point: SQS batch of S3 notifications in, partial batch response out.

Thin by design: Powertools decorators, the batch runner, and one call into ``Pipeline`` per record; what an
execution environment holds is built once (``environment.runtime()``), the telemetry lives in ``telemetry.py``.
"""

from __future__ import annotations

# First, before anything heavy is imported: an execution environment starts with the collector paused (collector.py).
from lambdas.inference import collector

collector.pause()

import contextlib
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.contract import errors, events, outcome_stream
from lambdas.contract.errors import TransientError
from lambdas.contract.rules import ConfigError
from lambdas.inference import deadline
from lambdas.inference.batch import SqsRecord
from lambdas.inference.environment import Runtime, runtime
from lambdas.inference.pipeline import BatchScope
from lambdas.inference.source_queue import Acknowledgements, watching
from lambdas.inference.telemetry import logger, metrics, tracing

# Records still waiting when less than this remains are returned as failures rather than cut off mid-write:
# 10 s, or a quarter of the invocation's time for short timeouts.
SAFETY_MARGIN_MS = 10_000
# The batch's response leaves this long before the timeout (a second, or 5% of a short invocation), with every
# record still running reported failed.
RESPONSE_MARGIN_SECONDS = 1.0
RESPONSE_MARGIN_SHARE = 0.05
# The batch's rows go to the outcome stream after its records: the call's time is kept from the records'.
STREAM_SECONDS = float(outcome_stream.WORST_SECONDS)


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
    try:
        return _run_batch(event, context, current)
    finally:
        if current.telemetry is not None:
            current.telemetry.flush()  # the batch's counts, into the EMF line Powertools prints on return


def _run_batch(event: dict[str, Any], context: LambdaContext, current: Runtime) -> dict[str, Any]:
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
