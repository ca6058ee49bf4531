"""Which production images a person reviews: a stratified random sample with known inclusion probabilities.

Each result falls in one stratum by what the model said (``stratum``): nothing at all; its most telling finding
(the one nearest its label's threshold) far below, just below, just above or far above that threshold; or, when
a challenger ran, a disagreement between the two. The budget is spread over the strata (``allocate``): every
non-empty stratum gets at least ``MIN_PER_STRATUM`` (all of it when smaller), the rest goes in proportion to
size, near-threshold strata and disagreements weighted ``NEAR_WEIGHT`` times (they are where a threshold's
choice is decided): above the minimums they are ``NEAR_WEIGHT`` times as dense; overall, with the minimums, less
(simulated at budgets of 60-300: 2.2-2.9 times on an even population, 1.6-2.2 on a lopsided one). A budget
below the number of non-empty strata is refused (``BudgetTooSmall``), never met by leaving strata out. Within a
stratum, a simple random sample without replacement (``draw``, seeded): every image of stratum h is drawn with
probability n_h / N_h, recorded with it, so the estimates (``estimate.py``) weigh each reviewed image by what it
stands for. Pure: no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from inferctl.evaluation.evaluate import pool
from lambdas.contract.thresholds import NEAR_POINTS, Thresholds

NEAR = NEAR_POINTS  # confidence points either side of a threshold that count as "near"
MIN_PER_STRATUM = 5
NEAR_WEIGHT = 3.0
STRATA = ("none", "far-below", "near-below", "near-above", "far-above", "disagreement")
NEAR_STRATA = frozenset({"near-below", "near-above", "disagreement"})


def stratum(document: Mapping[str, Any], thresholds: Thresholds) -> str:
    """What the model said about this image, in one word (``STRATA``)."""
    challenger = document.get("challenger")
    if isinstance(challenger, dict) and challenger.get("labels") is not None:
        mine = sorted(label["name"] for label in document.get("labels", []))
        theirs = sorted(label["name"] for label in challenger.get("labels", []))
        if mine != theirs:
            return "disagreement"
    found = pool(document)
    if not found:
        return "none"
    margin = min(
        (float(label["confidence"]) - thresholds.threshold_for(label["name"]) for label in found),
        key=abs,
    )
    if margin < -NEAR:
        return "far-below"
    if margin < 0:
        return "near-below"
    if margin < NEAR:
        return "near-above"
    return "far-above"


class BudgetTooSmall(ValueError):
    """Fewer images to review than strata with results: a stratum left out would leave its results unrepresented,
    and the estimates would stand for part of the population while saying they stand for all of it."""

    def __init__(self, budget: int, strata: int) -> None:
        super().__init__(
            f"a budget of {budget} is fewer than the {strata} strata that have results: every stratum needs at least "
            f"one reviewed image; give --budget {strata} or more ({strata * MIN_PER_STRATUM} for "
            f"{MIN_PER_STRATUM} each)"
        )


def allocate(sizes: Mapping[str, int], budget: int) -> dict[str, int]:
    """How many to draw from each stratum: at least one, ``MIN_PER_STRATUM`` (or all it has) when the budget
    allows, the rest by weighted size (largest remainders), never more than a stratum holds; the total is
    min(budget, population). BudgetTooSmall when the budget is below the number of non-empty strata."""
    sizes = {name: size for name, size in sizes.items() if size > 0}
    budget = min(budget, sum(sizes.values()))
    if budget < len(sizes):
        raise BudgetTooSmall(budget, len(sizes))
    counts = {name: min(size, MIN_PER_STRATUM) for name, size in sizes.items()}
    while sum(counts.values()) > budget:  # a budget below the minimums: take from the largest, never below one
        largest = max(counts, key=lambda name: (counts[name], name))
        counts[largest] -= 1
    while sum(counts.values()) < budget:
        room = {name: sizes[name] - counts[name] for name in sizes if sizes[name] > counts[name]}
        weights = {name: room[name] * (NEAR_WEIGHT if name in NEAR_STRATA else 1.0) for name in room}
        left = budget - sum(counts.values())
        total = sum(weights.values())
        shares = {name: min(room[name], left * weights[name] / total) for name in room}
        floors = {name: int(share) for name, share in shares.items()}
        if not any(floors.values()):  # fewer left than strata with room: one each, by largest share
            for name in sorted(shares, key=lambda name: (-shares[name], name))[:left]:
                counts[name] += 1
            break
        for name, extra in floors.items():
            counts[name] += extra
    return counts


@dataclass(frozen=True)
class Drawn:
    """A reviewed image: why it was drawn (its stratum) and with what probability."""

    key: str
    stratum: str
    probability: float  # n_h / N_h

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "stratum": self.stratum, "probability": self.probability}


@dataclass(frozen=True)
class Sample:
    drawn: list[Drawn]
    population: dict[str, int]  # N_h
    sizes: dict[str, int]  # n_h
    seed: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "population": self.population,
            "sizes": self.sizes,
            "drawn": [item.as_dict() for item in self.drawn],
        }


def draw(strata_of: Iterable[tuple[str, str]], budget: int, seed: int) -> Sample:
    """``strata_of``: (key, stratum) for every image in the population (ok results). The same population,
    budget and seed draw the same sample."""
    members: dict[str, list[str]] = {}
    for key, name in strata_of:
        members.setdefault(name, []).append(key)
    population = {name: len(keys) for name, keys in members.items()}
    sizes = allocate(population, budget)
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    drawn: list[Drawn] = []
    for name in sorted(sizes):
        keys = sorted(members[name])
        chosen = rng.sample(keys, sizes[name])
        probability = sizes[name] / population[name]
        drawn.extend(Drawn(key, name, probability) for key in chosen)
    rng.shuffle(drawn)  # the reviewer sees no stratum order
    return Sample(drawn, population, {name: n for name, n in sizes.items() if n}, seed)
