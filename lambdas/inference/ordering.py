"""Which notification wins: S3 delivers at least once and in no particular order.

For one key, S3's ``sequencer`` orders events: the greater value is the later event, after left-padding the
shorter hex string with zeros (S3 User Guide, "Event message structure"). Pure functions, tested alone.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from .model import ObjectRef


def sequencer_order(sequencer: str) -> int:
    """A sort key for a sequencer: comparing the numbers is comparing the zero-padded hex strings."""
    return int(sequencer, 16)


def later(a: str, b: str) -> bool:
    """``a`` is a later event than ``b`` (same key)."""
    return sequencer_order(a) > sequencer_order(b)


class Verdict(Enum):
    PROCESS = "process"
    DUPLICATE = "duplicate"  # this very object version (or ETag) already has its outcome
    SUPERSEDED = "superseded"  # a later event of the same key already wrote its outcome


def same_object(ref: ObjectRef, source: dict[str, Any]) -> bool:
    if ref.version_id is not None:
        return bool(source.get("version_id") == ref.version_id)
    return ref.etag is not None and bool(source.get("etag") == ref.etag)


def judge(ref: ObjectRef, existing: dict[str, Any] | None) -> Verdict:
    """What to do with a notification given the outcome document already at its result key (ours, or None).
    A forced re-run processes the version again, once per run: the document records the run it answered."""
    if existing is None or existing.get("status") not in ("ok", "error"):
        return Verdict.PROCESS
    if ref.rerun:
        done = (existing.get("rerun") or {}).get("run") == ref.rerun
        return Verdict.DUPLICATE if done else Verdict.PROCESS
    source = existing.get("source") or {}
    recorded = source.get("sequencer")
    if ref.sequencer and isinstance(recorded, str) and recorded:
        try:
            if later(recorded, ref.sequencer):
                return Verdict.SUPERSEDED
        except ValueError:
            pass  # not hex: fall back to the object's identity
    if same_object(ref, source):
        return Verdict.DUPLICATE
    return Verdict.PROCESS
