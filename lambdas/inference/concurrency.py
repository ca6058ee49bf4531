"""Powertools' BatchProcessor, with the records of a batch processed concurrently on a bounded pool.

Inference calls are I/O-bound, so ten records cost about one model round-trip instead of ten. Powertools'
success/failure bookkeeping appends to lists (atomic under the GIL) and builds the partial batch response
after every record has finished, so the response stays exact. Each record runs in its own copy of the
caller's context, so thread-safe log keys set for one record never leak into another.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType


class ConcurrentBatchProcessor(BatchProcessor):
    def __init__(self, max_workers: int, **kwargs: Any) -> None:
        super().__init__(event_type=EventType.SQS, **kwargs)
        self.max_workers = max_workers
        self._executor: ThreadPoolExecutor | None = None

    def process(self) -> list[tuple[Any, ...]]:
        records = list(self.records)
        if self.max_workers <= 1 or len(records) <= 1:
            return [contextvars.copy_context().run(self._process_record, record) for record in records]
        if self._executor is None:
            # Created once per container and reused by every invocation.
            self._executor = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="record")
        futures = [
            self._executor.submit(contextvars.copy_context().run, self._process_record, record) for record in records
        ]
        return [future.result() for future in futures]
