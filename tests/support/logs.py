"""Reading the function's log (JSON lines) in tests: what it did for each image."""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from pathlib import Path

WRITTEN = "Result written"


def results_written(log: Path, since: int = 0) -> Counter[str]:
    """Per object key, the results the function wrote, in the log from byte ``since`` on: how many times each
    image was worked through to its result (the model may have been asked more often: botocore retries a
    call that timed out, and the emulated model counts the retry as a call)."""
    written: Counter[str] = Counter()
    with log.open("rb") as handle:
        handle.seek(since)
        for raw in handle:
            with contextlib.suppress(ValueError):
                entry = json.loads(raw)
                if isinstance(entry, dict) and entry.get("message") == WRITTEN and entry.get("object_key"):
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
