"""Which notification wins: S3 delivers at least once and in no particular order.

For one key, S3's ``sequencer`` orders events: the greater value is the later event. Sequencers can differ in
length: right-pad the shorter one with zeros, then compare the strings (S3 User Guide, "Event message
structure"; AWS Knowledge Center, "duplicate messages in Amazon SQS for the same Amazon S3 event"). An older
version of that page said left-pad; this module followed it until 2026-11-29, see docs/decisions.md.

A message without a sequencer (``inferctl reprocess`` makes them) cannot be ordered against a recorded event:
the pipeline then asks S3 which version is current before it replaces anything (``Verdict.UNORDERED``).
Pure functions, tested alone.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from lambdas.contract.values import ObjectRef

_HEX = frozenset("0123456789ABCDEF")


def _normalised(sequencer: str) -> str:
    value = sequencer.strip().upper()
    if not value or not set(value) <= _HEX:
        raise ValueError(f"not a hexadecimal sequencer: {sequencer!r}")
    return value


def later(a: str, b: str) -> bool:
    """``a`` is a later event than ``b`` (same key): right-pad the shorter with zeros, compare as strings.
    Hex letters in either case; ValueError when either is not hex."""
    left, right = _normalised(a), _normalised(b)
    width = max(len(left), len(right))
    return left.ljust(width, "0") > right.ljust(width, "0")


class Verdict(Enum):
    PROCESS = "process"
    DUPLICATE = "duplicate"  # this very object version (or ETag) already has its outcome
    SUPERSEDED = "superseded"  # a later event of the same key already wrote its outcome
    # The document answers another version and nothing orders the two (a message without a sequencer, or a
    # document without one): process only if this version is still the key's current one.
    UNORDERED = "unordered"


def same_object(ref: ObjectRef, source: dict[str, Any]) -> bool:
    if ref.version_id is not None:
        return bool(source.get("version_id") == ref.version_id)
    return ref.etag is not None and bool(source.get("etag") == ref.etag)


def judge(ref: ObjectRef, existing: dict[str, Any] | None) -> Verdict:
    """What to do with a notification given the outcome document already at its result key (ours, or None).

    A forced re-run processes the same version again, once per run (the document records the run it
    answered); it never reaches past another version's document without the ordering below."""
    if existing is None or existing.get("status") not in ("ok", "error"):
        return Verdict.PROCESS
    source = existing.get("source") or {}
    if same_object(ref, source):
        if ref.rerun and (existing.get("rerun") or {}).get("run") != ref.rerun:
            return Verdict.PROCESS
        return Verdict.DUPLICATE
    recorded = source.get("sequencer")
    if ref.sequencer and isinstance(recorded, str) and recorded:
        try:
            return Verdict.SUPERSEDED if later(recorded, ref.sequencer) else Verdict.PROCESS
        except ValueError:
            pass  # not hex: nothing orders the two
    return Verdict.UNORDERED
