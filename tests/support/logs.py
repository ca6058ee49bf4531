"""Reading the function's log (JSON lines) in tests: what it did for each image."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

WRITTEN = "Result written"


def entries(log: Path, since: int = 0) -> Iterator[dict[str, Any]]:
    """The log's JSON objects from byte ``since`` on (lines that are not JSON objects, such as prints, left out)."""
    with log.open("rb") as handle:
        handle.seek(since)
        for raw in handle:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if isinstance(entry, dict):
                yield entry


def results_written(log: Path, since: int = 0) -> Counter[str]:
    """Per object key, the results the function wrote, in the log from byte ``since`` on: how many times each
    image was worked through to its result (the model may have been asked more often: botocore retries a
    call that timed out, and the emulated model counts the retry as a call)."""
    written: Counter[str] = Counter()
    for entry in entries(log, since):
        if entry.get("message") == WRITTEN and entry.get("object_key"):
            written[entry["object_key"]] += 1
    return written


def size(log: Path) -> int:
    """Where the log ends now: pass it as ``since`` to read only what comes after."""
    return log.stat().st_size if log.exists() else 0


def settled_results(log: Path, since: int, keys: list[str], timeout: float = 60) -> Counter[str]:
    """``results_written`` once every key has at least one: the function writes a result to S3 before it logs
    it, so a test that saw the result in S3 may be a moment ahead of the log line (a condition, not a sleep:
    it returns as soon as the lines are there, and after ``timeout`` with what is there)."""
    deadline = time.monotonic() + timeout
    while True:
        written = results_written(log, since)
        if all(written[key] for key in keys) or time.monotonic() > deadline:
            return written
        time.sleep(0.05)


STREAM_REFUSED = "The outcome stream did not take some rows: their records are retried"


def rows_refused(log: Path) -> dict[str, set[str]]:
    """Per invocation (request id), the messages failed because the outcome stream did not take their rows in
    time: on a busy machine the emulated Firehose can answer after the stream's 1 s read, and the record is then
    retried by design (``lambdas/contract/outcome_stream.py``). Tests that count failures add these."""
    refused: dict[str, set[str]] = {}
    for entry in entries(log):
        if entry.get("message") == STREAM_REFUSED:
            refused.setdefault(str(entry.get("function_request_id")), set()).update(entry.get("message_ids") or [])
    return refused


def first_request_id(log: Path) -> str | None:
    """The request id of the first invocation that logged anything."""
    return next((str(entry["function_request_id"]) for entry in entries(log) if entry.get("function_request_id")), None)
