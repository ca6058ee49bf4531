"""Production precision and recall per label, estimated from a reviewed stratified sample, with 95 % intervals.

The reviewed images are a stratified simple random sample without replacement (``sampling.py``): image i of
stratum h stands for w_i = N_h / n_h images. At a threshold t, for label L, each reviewed image gives y_i (its
predictions of L at or above t that match a reviewed object: true positives), x_i (all its predictions of L at
or above t) and z_i (its reviewed objects of L). Precision = Y / X and recall = Y / Z are ratios of population
totals, each total estimated by expansion (Horvitz-Thompson: sum of w_i times the value).

The interval: the ratio's variance by linearisation for a stratified design (Cochran, Sampling Techniques, 6.11:
residuals e_i = y_i - R x_i, V = sum_h N_h^2 (1 - n_h/N_h) s_h^2(e) / n_h / X^2), turned into an effective sample
size n* = R (1 - R) / V, capped at the reviewed images that have any prediction (or object) of the label (as
Korn and Graubard's interval for complex surveys does), and a Wilson score interval at n*. Wilson rather than
the normal interval because precision lives near 1, where the normal interval leaves [0, 1] and under-covers,
and a sample with no false positive would otherwise give a zero-width interval.

Assumptions: the review is right (a reviewer's miss is a model's false negative nobody counts); every drawn
image is reviewed (an image left out changes the probabilities: review the whole sample, or draw anew); the
population is the results the sample was drawn from (new traffic is a new population); objects are matched
as ``evaluate`` matches them (IoU >= 0.5, greedy by confidence). Checked by simulation against a population
with known truth: ``tests/unit/inferctl/evaluation/test_estimate.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inferctl.evaluation.evaluate import in_results_frame, pool, score_image
from inferctl.evaluation.groundtruth import GroundTruth
from inferctl.evaluation.matching import DEFAULT_IOU
from inferctl.evaluation.sampling import Sample

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Unit:
    """One reviewed image: its stratum, and per label its predictions (confidence, matched) and its objects."""

    key: str
    stratum: str
    scored: Mapping[str, Sequence[tuple[float, bool]]]
    positives: Mapping[str, int]


@dataclass(frozen=True)
class Interval:
    value: float | None
    low: float | None
    high: float | None
    effective_n: float
    why_none: str | None = None  # why there is no estimate (value None), in words

    def as_dict(self) -> dict[str, Any]:
        def rounded(number: float | None) -> float | None:
            return None if number is None else round(number, 4)

        found: dict[str, Any] = {
            "value": rounded(self.value),
            "low": rounded(self.low),
            "high": rounded(self.high),
            "effective_n": round(self.effective_n, 1),
        }
        if self.why_none:
            found["why_none"] = self.why_none
        return found


@dataclass(frozen=True)
class LabelEstimate:
    label: str
    threshold: float
    precision: Interval
    recall: Interval
    f1: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "threshold": self.threshold,
            "precision": self.precision.as_dict(),
            "recall": self.recall.as_dict(),
            "f1": None if self.f1 is None else round(self.f1, 4),
        }


def wilson(rate: float, n: float, z: float = Z95) -> tuple[float, float]:
    if n <= 0:
        return 0.0, 1.0
    denominator = 1 + z * z / n
    center = (rate + z * z / (2 * n)) / denominator
    half = z * math.sqrt(max(0.0, rate * (1 - rate) / n + z * z / (4 * n * n))) / denominator
    return max(0.0, center - half), min(1.0, center + half)


def unseen_event_spread(n: int, rate: float) -> float:
    """The spread a stratum's residuals are given when its sample shows none (every reviewed image alike, or one
    image): as if one event in ``n + 1`` images could have been missed by the sample (a rare label's missed objects
    hiding in the large "nothing found" stratum), each moving the ratio's residual by the larger of ``rate`` and
    ``1 - rate``. Without it such a stratum adds no variance and the interval claims a certainty the sample does not
    have (simulated: recall intervals covering the truth in 72 % of draws at a budget of 60)."""
    chance = 1 / (n + 1)
    return chance * (1 - chance) * max(rate, 1 - rate) ** 2


def ratio(
    units: Sequence[Unit],
    numerator: Callable[[Unit], float],
    denominator: Callable[[Unit], float],
    sample: Sample,
    z: float = Z95,
    *,
    may_hold: Callable[[str], bool] = lambda stratum: True,
    nothing: str = "nothing reviewed counts towards it",
) -> Interval:
    """The population ratio sum(numerator) / sum(denominator) over all images, from the reviewed ones.
    ``may_hold(stratum)``: whether the stratum can hold what the denominator counts at all (the "nothing found"
    stratum holds no prediction); one that can but whose sample shows no variation gets ``unseen_event_spread``.
    ``nothing``: why there is no estimate when the denominator's total is zero."""
    by_stratum: dict[str, list[tuple[float, float]]] = {}  # each reviewed image's (numerator, denominator)
    for unit in units:
        by_stratum.setdefault(unit.stratum, []).append((numerator(unit), denominator(unit)))
    total_y = total_x = 0.0
    for name, members in by_stratum.items():
        weight = sample.population[name] / len(members)
        total_y += weight * sum(y for y, _ in members)
        total_x += weight * sum(x for _, x in members)
    informative = sum(1 for members in by_stratum.values() for _, x in members if x > 0)
    if total_x <= 0:
        return Interval(None, None, None, 0.0, nothing)
    rate = total_y / total_x
    variance = 0.0
    for name, members in by_stratum.items():
        n, population = len(members), sample.population[name]
        residuals = [y - rate * x for y, x in members]
        mean = sum(residuals) / n
        spread = sum((e - mean) ** 2 for e in residuals) / (n - 1) if n > 1 else 0.0
        if spread <= 0 and may_hold(name):
            spread = unseen_event_spread(n, rate)
        variance += stratum_variance(population, n, spread)
    effective = effective_n(rate, variance / (total_x * total_x), informative)
    low, high = wilson(rate, effective, z)
    return Interval(rate, low, high, effective)


def stratum_variance(population: float, n: float, spread: float) -> float:
    """A stratum's share of the estimated total's variance: N_h^2 (1 - n_h/N_h) s_h^2 / n_h."""
    return population * population * (1 - n / population) * spread / n


def effective_n(rate: float, variance: float, informative: float) -> float:
    """The ratio's effective sample size R (1 - R) / V, capped at the informative images, at least one of them."""
    effective = informative if variance <= 0 else min(informative, rate * (1 - rate) / variance)
    return max(effective, 1.0) if informative else 0.0


def precision_at(units: Sequence[Unit], sample: Sample, label: str, threshold: float) -> Interval:
    def hits(unit: Unit) -> float:
        return sum(1 for confidence, hit in unit.scored.get(label, ()) if hit and confidence >= threshold)

    def predicted(unit: Unit) -> float:
        return sum(1 for confidence, _ in unit.scored.get(label, ()) if confidence >= threshold)

    return ratio(
        units,
        hits,
        predicted,
        sample,
        may_hold=lambda stratum: stratum != "none",  # an image the model said nothing about holds no prediction
        nothing=f"no reviewed image has a prediction of {label} at {threshold:g} or above",
    )


def at(units: Sequence[Unit], sample: Sample, label: str, threshold: float) -> LabelEstimate:
    def hits(unit: Unit) -> float:
        return sum(1 for confidence, hit in unit.scored.get(label, ()) if hit and confidence >= threshold)

    def objects(unit: Unit) -> float:
        return float(unit.positives.get(label, 0))

    precision = precision_at(units, sample, label, threshold)
    recall = ratio(
        units, hits, objects, sample, nothing=f"no reviewed image shows a {label}: too rare for this sample to say"
    )
    f1 = None
    if precision.value is not None and recall.value is not None and precision.value + recall.value > 0:
        f1 = 2 * precision.value * recall.value / (precision.value + recall.value)
    return LabelEstimate(label, threshold, precision, recall, f1)


def recommend(
    units: Sequence[Unit], sample: Sample, label: str, target: float, floor: float = 0.0
) -> LabelEstimate | None:
    """The lowest threshold (most recall) whose precision's interval lies at or above ``target`` (so it holds
    with 97.5 % one-sided confidence), among the reviewed predictions' confidences; None when none does.

    Each threshold is decided by ``precision_at``, as stated; ``_optimistic_lows`` only passes over the ones whose
    interval cannot reach the target, at a cost per threshold of the strata, not of the reviewed images."""
    confidences = sorted({c for unit in units for c, _ in unit.scored.get(label, ()) if c >= floor})
    for threshold, optimistic in zip(confidences, _optimistic_lows(units, sample, label, confidences), strict=True):
        if optimistic is None or optimistic < target - _MARGIN:
            continue  # precision_at's lower bound is at most this one: the target is out of reach
        precision = precision_at(units, sample, label, threshold)  # recall only for the one chosen
        if precision.low is not None and precision.low >= target:
            return at(units, sample, label, threshold)
    return None


_MARGIN = 1e-6  # far above the rounding by which sums and per-image residuals differ (about 1e-15)


def _optimistic_lows(
    units: Sequence[Unit], sample: Sample, label: str, thresholds: Sequence[float], z: float = Z95
) -> Iterator[float | None]:
    """At each threshold (ascending), a bound that ``precision_at``'s lower end never exceeds (None where it has
    no estimate): the same ratio and variance, from each stratum's running sums of y, x, y², x² and xy updated as
    the threshold passes each prediction, without ``unseen_event_spread``. Leaving that spread out only narrows
    the interval (less variance, a larger effective n, a higher Wilson lower end), so the bound is optimistic."""
    sums: dict[str, list[float]] = {}  # stratum: [n, y, x, yy, xx, xy, images with a prediction]
    current: list[tuple[int, int]] = []  # each image's (true positives, predictions) at the threshold
    passing: list[tuple[float, int, bool]] = []  # (confidence, image, matched): where an image's counts drop
    start = thresholds[0] if thresholds else 0.0
    for index, unit in enumerate(units):
        found = [(confidence, hit) for confidence, hit in unit.scored.get(label, ()) if confidence >= start]
        counts = (sum(1 for _, hit in found if hit), len(found))
        current.append(counts)
        passing.extend((confidence, index, hit) for confidence, hit in found)
        row = sums.setdefault(unit.stratum, [0.0] * 7)
        row[0] += 1
        for slot, value in enumerate(_moments(*counts), start=1):
            row[slot] += value
    passing.sort(reverse=True)  # the lowest confidence last: popped first
    for threshold in thresholds:
        while passing and passing[-1][0] < threshold:
            _, index, hit = passing.pop()
            y, x = current[index]
            current[index] = (y - hit, x - 1)
            row = sums[units[index].stratum]
            for slot, (old, new) in enumerate(zip(_moments(y, x), _moments(y - hit, x - 1), strict=True), start=1):
                row[slot] += new - old
        yield _bound(sums, sample, z)


def _moments(y: int, x: int) -> tuple[int, int, int, int, int, int]:
    return y, x, y * y, x * x, x * y, int(x > 0)


def _bound(sums: Mapping[str, Sequence[float]], sample: Sample, z: float) -> float | None:
    total_y = total_x = 0.0
    for name, (n, y, x, *_) in sums.items():
        weight = sample.population[name] / n
        total_y += weight * y
        total_x += weight * x
    if total_x <= 0:
        return None
    rate = total_y / total_x
    variance = informative = 0.0
    for name, (n, y, x, yy, xx, xy, with_predictions) in sums.items():
        informative += with_predictions
        if n <= 1:
            continue
        population = sample.population[name]
        squares = yy - 2 * rate * xy + rate * rate * xx  # the sum of squared residuals y - rate x
        mean = (y - rate * x) / n
        spread = max(0.0, squares - n * mean * mean) / (n - 1)
        variance += stratum_variance(population, n, spread)
    return wilson(rate, effective_n(rate, variance / (total_x * total_x), informative), z)[0]


def units_from(
    documents: Iterable[Mapping[str, Any]], truth: GroundTruth, sample: Sample, iou: float = DEFAULT_IOU
) -> list[Unit]:
    """The reviewed images as units: each drawn image's result (accepted labels and candidates) matched to its
    review. A drawn image without a review or a result is left out (see the assumptions above)."""
    by_key = {str(d["source"]["key"]): d for d in documents if isinstance(d.get("source"), dict)}
    units = []
    for drawn in sample.drawn:
        document, reviewed = by_key.get(drawn.key), truth.images.get(drawn.key)
        if document is None or reviewed is None:
            continue
        judged, positives = score_image(
            drawn.key, pool(document), in_results_frame(reviewed, document), truth.kind, iou
        )
        scored = {name: [(item.confidence, item.hit) for item in items] for name, items in judged.items()}
        units.append(Unit(drawn.key, drawn.stratum, scored, positives))
    return units
