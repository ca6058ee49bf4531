"""What other thresholds would have kept, from stored results alone (their labels and candidates): no model
call. Exact for any threshold at or above the candidate floor each result was written with; below it, the
labels under the floor were never recorded, and the answer says so."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from inferctl.evaluation.evaluate import pool
from lambdas.contract.thresholds import Thresholds


@dataclass(frozen=True)
class Change:
    key: str
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass
class WhatIf:
    images: int = 0
    now: Counter[str] = field(default_factory=Counter)  # label -> accepted now
    proposed: Counter[str] = field(default_factory=Counter)
    changes: list[Change] = field(default_factory=list)
    below_floor: list[str] = field(default_factory=list)  # images whose floor is above a proposed threshold

    def as_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "labels": {
                name: {"now": self.now.get(name, 0), "proposed": self.proposed.get(name, 0)}
                for name in sorted(set(self.now) | set(self.proposed))
            },
            "changed_images": [change.__dict__ for change in self.changes],
            "incomplete_below_floor": self.below_floor,
        }


def kept(document: dict[str, Any], thresholds: Thresholds) -> list[dict[str, Any]]:
    """The labels ``thresholds`` would accept among a result's labels and candidates, highest first."""
    accepted = [label for label in pool(document) if label["confidence"] >= thresholds.threshold_for(label["name"])]
    return sorted(accepted, key=lambda label: (-label["confidence"], label["name"]))


def what_if(documents: Iterable[dict[str, Any]], proposed: Thresholds) -> WhatIf:
    report = WhatIf()
    for document in documents:
        if document.get("status") != "ok":
            continue
        report.images += 1
        key = document["source"]["key"]
        floor = (document.get("thresholds") or {}).get("candidate_floor", 100.0)
        if proposed.lowest() < floor:
            report.below_floor.append(key)
        now = [label["name"] for label in document.get("labels", [])]
        new = [label["name"] for label in kept(document, proposed)]
        report.now.update(now)
        report.proposed.update(new)
        added = tuple(sorted((Counter(new) - Counter(now)).elements()))
        removed = tuple(sorted((Counter(now) - Counter(new)).elements()))
        if added or removed:
            report.changes.append(Change(key, added, removed))
    return report
