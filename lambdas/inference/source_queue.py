"""The function's own calls to its source queue; Lambda's trigger does the rest (receive, and delete what the batch
response does not name).

- ``SourceQueue.delay``: a failed record comes back after a delay that grows with its receive count.
- ``Acknowledgements``: what a batch's finished records leave to do. Their outcome table rows go to the stream in
  one call when the batch ends (``flush``: a record whose row the stream did not take fails, and its redelivery
  sends only the row). Once a batch is *at risk* (one of its messages was received before, perhaps in a batch that
  was killed; or one of its images is decoded in a bounded child), each record that finishes has its row sent and
  its message deleted at once, and those finished before are dealt with then. A batch that is killed afterwards
  (out of memory, out of time: every message of it comes back) then brings back only what had not finished: a
  finished image is never received again, so it never ends with a result *and* a dead letter.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from lambdas.contract.pacing import backoff_seconds
from lambdas.inference.batch import SqsRecord

DELETE_BATCH = 10  # DeleteMessageBatch takes at most 10 entries


class SourceQueue:
    """The function's queue (the SQS client is created the first time it is needed: the cold start does not pay)."""

    def __init__(self, queue_url: str, cap_seconds: int, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self.cap_seconds = cap_seconds
        self._client = client
        self._lock = threading.Lock()

    def delay(self, receipt_handle: str, receive_count: int) -> int:
        """Make a failed record visible again after its backoff (``pacing.backoff_seconds``); returns the delay."""
        seconds = backoff_seconds(receive_count, self.cap_seconds)
        self._sqs().change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )
        return seconds

    def delete(self, receipt_handles: list[str]) -> list[str]:
        """Delete these messages now; returns the receipt handles SQS did not delete."""
        failed: list[str] = []
        for start in range(0, len(receipt_handles), DELETE_BATCH):
            chunk = receipt_handles[start : start + DELETE_BATCH]
            response = self._sqs().delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(index), "ReceiptHandle": handle} for index, handle in enumerate(chunk)],
            )
            failed += [chunk[int(entry["Id"])] for entry in response.get("Failed", [])]
        return failed

    def _sqs(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3

                self._client = boto3.client("sqs")
            return self._client


class Log(Protocol):
    def info(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None: ...


class Stream(Protocol):
    def send(self, records: Sequence[tuple[str, bytes]], seconds: float | None = None) -> set[str]: ...


class Acknowledgements:
    """One batch's finished records: their rows sent to the outcome stream, and their messages deleted by the
    function itself once the batch is at risk."""

    def __init__(
        self,
        queue: SourceQueue | None,
        log: Log,
        message_ids: list[str] | None = None,
        stream: Stream | None = None,
    ) -> None:
        self._queue = queue
        self._log = log
        self._stream = stream
        self.message_ids = message_ids or []
        self._lock = threading.Lock()
        self._finished: list[tuple[SqsRecord, list[bytes]]] = []
        self.reason: str | None = None  # why the batch is at risk (None: it is not)
        self.deleted = 0
        self.rows_failed = 0  # rows the stream did not take (their records fail, and come back)
        self._unsent: dict[str, SqsRecord] = {}  # the records whose rows did not reach the stream, by message id

    def at_risk(self, reason: str) -> None:
        """From now on, finished records are dealt with as they finish; the ones finished already, now."""
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            waiting, self._finished = self._finished, []
        self._log.info(
            "Batch at risk: finished records are deleted as they finish",
            extra={"reason": reason, "message_ids": self.message_ids},
        )
        self._settle(waiting)

    def finished(self, record: SqsRecord, rows: Sequence[bytes] = ()) -> None:
        with self._lock:
            if self.reason is None:
                self._finished.append((record, list(rows)))
                return
        self._settle([(record, list(rows))])

    def flush(self, seconds: float | None = None) -> list[SqsRecord]:
        """The end of the batch: the rows of records not yet dealt with, in one call to the stream, waiting at most
        ``seconds`` for its answer. Returns the records whose rows failed: they must fail too (their redelivery
        sends the rows again)."""
        with self._lock:
            waiting, self._finished = self._finished, []
        self._send(waiting, seconds)
        with self._lock:
            return list(self._unsent.values())

    def _settle(self, finished: list[tuple[SqsRecord, list[bytes]]]) -> None:
        """A batch at risk: the rows first, then the messages whose rows are in."""
        self._send(finished)
        with self._lock:
            done = [record for record, _ in finished if record.message_id not in self._unsent]
        self._delete(done)

    def _send(self, finished: list[tuple[SqsRecord, list[bytes]]], seconds: float | None = None) -> None:
        records = [(record.message_id, row) for record, rows in finished for row in rows]
        if self._stream is None or not records:
            return
        failed = self._stream.send(records, seconds)
        if failed:
            self._log.warning(
                "The outcome stream did not take some rows: their records are retried",
                extra={
                    "message_ids": sorted(failed),
                    "rows": sum(1 for owner, _ in records if owner in failed),
                    "error": getattr(self._stream, "last_error", None),
                },
            )
        with self._lock:
            self._unsent.update({record.message_id: record for record, _ in finished if record.message_id in failed})
            self.rows_failed += sum(1 for owner, _ in records if owner in failed)

    def _delete(self, records: list[SqsRecord]) -> None:
        records = [record for record in records if record.receipt_handle]
        if self._queue is None or not records:
            return
        try:
            failed = self._queue.delete([record.receipt_handle for record in records])
        except Exception as exc:  # noqa: BLE001 - the trigger still deletes them with the batch's response
            self._log.warning("Could not delete finished records early", extra={"error": repr(exc)})
            return
        with self._lock:
            self.deleted += len(records) - len(failed)


# The batch the current record belongs to: a decode that could put it at risk says so (``at_risk``).
_CURRENT: contextvars.ContextVar[Acknowledgements | None] = contextvars.ContextVar("acknowledgements", default=None)


@contextlib.contextmanager
def watching(acknowledgements: Acknowledgements) -> Iterator[None]:
    """Records run in this block (in copies of its context) belong to this batch."""
    token = _CURRENT.set(acknowledgements)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def at_risk(reason: str) -> None:
    """The current record is about to do something that could end the invocation (or nothing, outside a batch)."""
    current = _CURRENT.get()
    if current is not None:
        current.at_risk(reason)
