"""Every outcome's row of the outcome table (``outcome_table.py``), handed to Amazon Data Firehose after its
document was written: one ``PutRecordBatch`` for a batch's rows (more only past Firehose's 500 records or 4 MiB a
call). A row Firehose did not take makes its record fail; the record's redelivery finds its document already written
and sends only the row again (``pipeline.Pipeline``: a duplicate on redelivery carries its row). The client is
created the first time it is needed: a stack without the table, and the cold start, pay nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

MAX_RECORDS = 500  # PutRecordBatch: at most 500 records ...
MAX_BYTES = 4 * 1024 * 1024  # ... and 4 MiB a call
# Short: the call runs in the moment the handler keeps before the batch's response. Firehose answers in tens of
# milliseconds; a call whose answer is lost is retried, and Firehose may then keep the batch twice (the table's
# current_outcomes keeps one row per image, whatever repeats).
CONNECT_SECONDS, READ_SECONDS, ATTEMPTS = 1, 1, 2
WORST_SECONDS = ATTEMPTS * (CONNECT_SECONDS + READ_SECONDS)


class OutcomeStream:
    def __init__(self, name: str, client: Any | None = None) -> None:
        self.name = name
        self._client = client
        self._lock = threading.Lock()
        self.last_error: str | None = None  # why the last call failed whole (for the log line that says so)

    def send(self, records: Sequence[tuple[str, bytes]], seconds: float | None = None) -> set[str]:
        """Put ``(owner, record)`` pairs; returns the owners of every record Firehose did not take (an error of the
        call fails them all). With ``seconds``, waits no longer than that: the rows of a call still unanswered then
        count as not taken (they may land anyway: the table keeps one current row per image, whatever repeats)."""
        if seconds is None or seconds >= WORST_SECONDS:  # the client's own timeouts end it in time: no thread
            return self._put(records)
        answered: list[set[str]] = []
        worker = threading.Thread(target=lambda: answered.append(self._put(records)), name="outcome-rows", daemon=True)
        worker.start()
        worker.join(max(0.0, seconds))
        if answered:
            return answered[0]
        self.last_error = f"no answer within {max(0.0, seconds):.2f} s"
        return {owner for owner, _ in records}

    def _put(self, records: Sequence[tuple[str, bytes]]) -> set[str]:
        failed: set[str] = set()
        for chunk in _chunks(records):
            try:
                response = self._firehose().put_record_batch(
                    DeliveryStreamName=self.name, Records=[{"Data": data} for _, data in chunk]
                )
            except Exception as exc:  # noqa: BLE001 - every row of the call is retried through its record
                self.last_error = f"{type(exc).__name__}: {exc}"
                failed.update(owner for owner, _ in chunk)
                continue
            if response.get("FailedPutCount"):
                for (owner, _), answer in zip(chunk, response.get("RequestResponses", []), strict=False):
                    if answer.get("ErrorCode"):
                        self.last_error = f"{answer['ErrorCode']}: {answer.get('ErrorMessage', '')}"
                        failed.add(owner)
        return failed

    def _firehose(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                config = Config(
                    connect_timeout=CONNECT_SECONDS,
                    read_timeout=READ_SECONDS,
                    retries={"total_max_attempts": ATTEMPTS, "mode": "standard"},
                )
                self._client = boto3.client("firehose", config=config)
            return self._client


def _chunks(records: Sequence[tuple[str, bytes]]) -> list[list[tuple[str, bytes]]]:
    chunks: list[list[tuple[str, bytes]]] = []
    current: list[tuple[str, bytes]] = []
    size = 0
    for owner, data in records:
        if current and (len(current) == MAX_RECORDS or size + len(data) > MAX_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append((owner, data))
        size += len(data)
    if current:
        chunks.append(current)
    return chunks
