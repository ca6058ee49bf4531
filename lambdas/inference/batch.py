"""SQS partial batch responses (``ReportBatchItemFailures``), the records of a batch run concurrently on a
bounded thread pool.

Lambda's contract: the response names the messages to redeliver in ``batchItemFailures``; every other
message of the batch is deleted. A record fails when its handler raises. Inference calls are I/O-bound, so
ten records cost about one model round trip instead of ten. Each record runs in its own copy of the
caller's context, so log keys set for one record never leak into another.

This replaces Powertools' BatchProcessor, whose module imports asyncio and every event data class (about
80 ms of cold start measured here) for a contract this small; see docs/decisions.md.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from concurrent.futures import ALL_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, NamedTuple


class SqsRecord(NamedTuple):
    """The parts of an SQS record (Lambda's event shape) the function uses."""

    message_id: str
    body: str
    receive_count: int
    receipt_handle: str
    event_source_arn: str

    @classmethod
    def from_event(cls, record: Mapping[str, Any]) -> SqsRecord:
        attributes = record.get("attributes") or {}
        try:
            count = int(attributes.get("ApproximateReceiveCount", 1))
        except (TypeError, ValueError):
            count = 1
        return cls(
            message_id=str(record["messageId"]),
            body=str(record.get("body", "")),
            receive_count=count,
            receipt_handle=str(record.get("receiptHandle", "")),
            event_source_arn=str(record.get("eventSourceARN", "")),
        )


RecordHandler = Callable[[SqsRecord], object]
Unexpected = Callable[[SqsRecord, Exception], None]
Late = Callable[[SqsRecord], None]


class BatchRunner:
    """Runs a record handler over a batch and builds the partial batch response."""

    def __init__(
        self,
        max_workers: int,
        expected: tuple[type[Exception], ...],
        on_unexpected: Unexpected,
        on_late: Late = lambda record: None,
    ) -> None:
        self.max_workers = max_workers
        self.expected = expected  # failures the handler has already logged and counted
        self.on_unexpected = on_unexpected
        self.on_late = on_late
        self._executor: ThreadPoolExecutor | None = None

    def process(
        self, event: Mapping[str, Any], handle: RecordHandler, wait_seconds: float | None = None
    ) -> dict[str, list[dict[str, str]]]:
        """The partial batch response. With ``wait_seconds`` (what is left of the invocation), a record still
        running when it is up is reported as failed, so the batch's response reaches Lambda before the timeout
        and the records that did finish are deleted, not received again."""
        # A record without a messageId cannot be reported: KeyError fails the whole batch, as Lambda would.
        records = [SqsRecord.from_event(record) for record in event.get("Records", [])]
        if wait_seconds is None and (self.max_workers <= 1 or len(records) <= 1):
            failed = [contextvars.copy_context().run(self._run, handle, record) for record in records]
            return _response(failed)
        if self._executor is None:
            # Created once per execution environment and reused by every invocation; one worker at least, so
            # that a bounded wait is possible even when records run one at a time.
            self._executor = ThreadPoolExecutor(max_workers=max(1, self.max_workers), thread_name_prefix="record")
        futures = [
            self._executor.submit(contextvars.copy_context().run, self._run, handle, record) for record in records
        ]
        # One wait for the whole batch: this thread wakes when the last record ends (or the time is up), not at each
        # record's end, which with fast records handed the interpreter back and forth once a record (measured: a
        # third of the handler's time per image with a zero-latency model).
        wait(futures, timeout=wait_seconds, return_when=ALL_COMPLETED)
        failed = []
        for record, future in zip(records, futures, strict=True):
            if future.done():
                failed.append(future.result())
            else:
                future.cancel()  # not started yet: it never will be
                self.on_late(record)
                failed.append(record.message_id)
        return _response(failed)

    def _run(self, handle: RecordHandler, record: SqsRecord) -> str | None:
        """None when the record succeeded, else its message id (to redeliver)."""
        try:
            handle(record)
        except self.expected:
            return record.message_id
        except Exception as exc:  # noqa: BLE001 - anything else is a bug: logged with its traceback, redelivered
            self.on_unexpected(record, exc)
            return record.message_id
        return None


def _response(failed: list[str | None]) -> dict[str, list[dict[str, str]]]:
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed if message_id]}
