"""A local event source that behaves like Lambda's SQS trigger (event source mapping).

- Long-polls ``ReceiveMessage`` and gathers up to ``batch_size`` messages, waiting at most the batching
  window for a batch to fill (Lambda's ``MaximumBatchingWindowInSeconds``).
- Invokes the handler with Lambda's SQS event shape and a context whose remaining time counts down from
  the function timeout.
- With ``ReportBatchItemFailures``: deletes the messages not listed in ``batchItemFailures``; a response
  naming an unknown message, or a handler that raises, fails the whole batch (as Lambda does).
- Never touches failed messages: they become visible again when the queue's visibility timeout passes,
  and the queue's redrive policy moves them to the DLQ after ``maxReceiveCount`` receives.
- Runs ``containers`` pollers at once (the mapping's ``MaximumConcurrency``), each an execution environment
  of its own: ``bind(i)`` is entered around every invocation of poller ``i``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from inferctl.emulator.runtime import LambdaContext, sqs_event

Handler = Callable[[dict[str, Any], Any], Any]
SQS_MAX_RECEIVE = 10  # ReceiveMessage returns at most 10 messages per call


@dataclass
class BatchReport:
    received: int
    succeeded: int
    failed: int
    handler_error: str | None = None


@dataclass
class TriggerStats:
    batches: int = 0
    received: int = 0
    deleted: int = 0
    failed: int = 0
    # Each message's highest ApproximateReceiveCount seen: how many receives it spent.
    receive_counts: dict[str, int] = field(default_factory=dict)


class SqsTrigger:
    def __init__(
        self,
        sqs: Any,
        *,
        queue_url: str,
        queue_arn: str,
        region: str,
        handler: Handler,
        batch_size: int = 10,
        batching_window_seconds: float = 0.0,
        function_timeout_seconds: float = 60.0,
        function_name: str = "image-inference-local",
        poll_wait_seconds: int = 1,
        on_batch: Callable[[BatchReport], None] | None = None,
        containers: int = 1,
        bind: Callable[[int], AbstractContextManager[Any]] | None = None,
        enabled: Callable[[], bool] | None = None,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.handler = handler
        self.batch_size = batch_size
        self.batching_window_seconds = batching_window_seconds
        self.function_timeout_seconds = function_timeout_seconds
        self.function_name = function_name
        self.poll_wait_seconds = poll_wait_seconds
        self.on_batch = on_batch
        self.containers = containers
        self.bind = bind or (lambda index: contextlib.nullcontext())
        self.enabled = enabled or (lambda: True)
        self.stats = TriggerStats()
        self._lock = threading.Lock()

    def _receive(self, wanted: int, wait_seconds: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(SQS_MAX_RECEIVE, wanted),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def gather(self) -> list[dict[str, Any]]:
        """One batch: long-poll for the first messages, then fill up until full or the window closes."""
        messages = self._receive(self.batch_size, self.poll_wait_seconds)
        if not messages:
            return []
        deadline = time.monotonic() + self.batching_window_seconds
        while len(messages) < self.batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            messages.extend(self._receive(self.batch_size - len(messages), 1 if remaining >= 1 else 0))
        return messages

    def poll_once(self, container: int = 0) -> BatchReport | None:
        """Gather one batch and invoke the handler with it; None when the queue had nothing."""
        messages = self.gather()
        if not messages:
            return None
        ids = {message["MessageId"] for message in messages}
        event = sqs_event(messages, self.queue_arn, self.region)
        context = LambdaContext(function_name=self.function_name, timeout_seconds=self.function_timeout_seconds)
        failed: set[str]
        handler_error = None
        try:
            with self.bind(container):
                response = self.handler(event, context)
            failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
            if not failed <= ids:
                handler_error = f"batchItemFailures names unknown messages: {sorted(failed - ids)}"
                failed = ids
        except Exception as exc:  # noqa: BLE001 - a function error fails the whole batch, as in Lambda
            handler_error = f"{type(exc).__name__}: {exc}"
            failed = ids
        succeeded = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(succeeded), SQS_MAX_RECEIVE):
            chunk = succeeded[start : start + SQS_MAX_RECEIVE]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        report = BatchReport(
            received=len(messages), succeeded=len(succeeded), failed=len(failed), handler_error=handler_error
        )
        with self._lock:
            for message in messages:
                count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
                previous = self.stats.receive_counts.get(message["MessageId"], 0)
                self.stats.receive_counts[message["MessageId"]] = max(previous, count)
            self.stats.batches += 1
            self.stats.received += report.received
            self.stats.deleted += report.succeeded
            self.stats.failed += report.failed
            if self.on_batch:
                self.on_batch(report)
        return report

    def run(self, stop: threading.Event, container: int = 0) -> None:
        """Poll until ``stop`` is set (checked between long-polls); a disabled mapping does not poll."""
        while not stop.is_set():
            if self.enabled():
                self.poll_once(container)
            else:
                stop.wait(max(0.2, self.poll_wait_seconds))

    def start(self) -> tuple[list[threading.Thread], threading.Event]:
        """One poller thread per container; set the event and join the threads to stop."""
        stop = threading.Event()
        threads = [
            threading.Thread(target=self.run, args=(stop, index), name=f"sqs-trigger-{index}", daemon=True)
            for index in range(self.containers)
        ]
        for thread in threads:
            thread.start()
        return threads, stop
