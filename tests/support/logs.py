"""Reading the function's log (JSON lines) in tests: why an image reached the model more than once."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from pathlib import Path

DUPLICATE = "Duplicate notification: this version's outcome is already recorded"


def repeats_explained(log: Path) -> Counter[str]:
    """Per object key, the attempts that can have called the model again and rightly so: each failed, late or
    unstarted attempt the function logged (its record-level lines name ``object_keys``), and each duplicate
    delivery settled as such (delivery is at least once: a notification, or a message an operator tool sent
    again after a timeout, may arrive twice, and two copies in flight at once both reach the model; the one
    that loses the conditional write ends as a duplicate)."""
    explained: Counter[str] = Counter()
    for line in log.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if not isinstance(entry, dict):
                continue
            explained.update(entry.get("object_keys") or [])
            if entry.get("message") == DUPLICATE and entry.get("object_key"):
                explained[entry["object_key"]] += 1
    return explained
