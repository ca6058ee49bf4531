"""``inferctl evaluate``: the stack's stored results against ground truth; a table, JSON and the HTML report;
``--apply`` sets the recommended per-label thresholds through the safe configuration path."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferctl.console import number
from inferctl.evaluation import estimate, groundtruth, report
from inferctl.evaluation.compare import Comparison, advice, compare
from inferctl.evaluation.evaluate import MIN_POSITIVES, Evaluation, LabelResult, evaluate
from inferctl.evaluation.evaluate import none_evaluated as explain_none
from inferctl.stack import configuration, uploads
from inferctl.stack.errors import OperationFailed
from inferctl.stack.tables import Source
from inferctl.stack.target import Target
from lambdas.contract.thresholds import Thresholds


@dataclass(frozen=True)
class Outcome:
    evaluation: Evaluation
    documents: list[dict[str, Any]]  # the results of the ground truth's images (the rest are not kept)
    truth: groundtruth.GroundTruth
    thresholds: Thresholds
    comparison: Comparison | None = None  # when results carry a challenger's answers
    first_other: dict[str, Any] | None = None  # the first result (by key) of an image the ground truth lacks


def current_thresholds(target: Target) -> Thresholds:
    return configuration.live_settings(target).thresholds


def run(
    target: Target,
    truth_path: Path,
    *,
    iou: float = 0.5,
    min_precision: float | None = None,
    prefix: str | None = None,
    source: Source | None = None,
) -> Outcome:
    """``source``: the outcome table to read the labelled images' documents from (by key), instead of the scan."""
    truth = groundtruth.load(truth_path, target.input_prefix)
    # Streamed: only the ground truth's images are kept (memory follows the manifest, not the bucket)
    documents: list[dict[str, Any]] = []
    first_other: dict[str, Any] | None = None
    if source is not None and source.table is not None:
        documents = source.documents_for(truth.images, prefix)
        if not documents:  # what the results are instead: the first by key
            first_other = next(iter(source.documents(prefix)), None)
    else:
        for document in uploads.iter_results(target, prefix):
            key = str((document.get("source") or {}).get("key"))
            if key in truth.images:
                documents.append(document)
            elif first_other is None or key < str(first_other["source"]["key"]):
                first_other = document
    thresholds = current_thresholds(target)
    evaluation = evaluate(documents, truth, thresholds, iou=iou, min_precision=min_precision)
    comparison = compare(documents, truth, thresholds, iou=iou, min_precision=min_precision)
    return Outcome(evaluation, documents, truth, thresholds, comparison, first_other)


def none_evaluated(outcome: Outcome, target: Target) -> str:
    """Why no ground-truth image was scored on this stack, and what to do."""
    seen = outcome.documents or ([outcome.first_other] if outcome.first_other else [])
    return explain_none(outcome.truth, seen, target.bucket, outcome.evaluation.not_evaluated)


def write_report(
    target: Target, outcome: Outcome, path: Path, title: str, colours: dict[str, str] | None = None
) -> Path:
    s3 = target.client("s3")

    def fetch(key: str, version: str | None) -> bytes:
        kwargs: dict[str, Any] = {"Bucket": target.bucket, "Key": key, **({"VersionId": version} if version else {})}
        data: bytes = s3.get_object(**kwargs)["Body"].read()
        return data

    evaluated = set(outcome.evaluation.evaluated)
    shown = [d for d in outcome.documents if d.get("source", {}).get("key") in evaluated]
    items = report.gallery(shown, outcome.truth, fetch)
    comparison = None
    if outcome.comparison is not None:
        comparison = {**outcome.comparison.as_dict(), "advice": advice(outcome.comparison)}
        comparison = report.with_pictures(comparison, outcome.documents, fetch)
    return report.write(path, outcome.evaluation, items, title, outcome.thresholds.min_confidence, comparison, colours)


def rows(evaluation: Evaluation) -> list[tuple[str, ...]]:
    """The terminal table: per label, the recommendation with its counts and the evidence it rests on (marked when
    thin), and where the current threshold is. A label with no true positive says what to do instead: raise its
    threshold above its most confident false positive, or that the model never finds it."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.0f}%"

    evaluated = len(evaluation.evaluated)
    table: list[tuple[str, ...]] = []
    for result in evaluation.labels:
        r, c = result.recommended, result.current
        evidence = f"{result.positives} in {evaluated} images"
        if r is not None and result.positives < MIN_POSITIVES:
            evidence += f" (few: under {MIN_POSITIVES})"
        table.append(
            (
                result.label,
                evidence,
                number(r.threshold) if r else _instead(result),
                f"{pct(r.precision)} / {pct(r.recall)} / {pct(r.f1)}" if r else "",
                f"{r.tp}/{r.fp}/{r.fn}" if r else "",
                f"{number(c.threshold)}: {pct(c.precision)} / {pct(c.recall)} / {pct(c.f1)}",
            )
        )
    return table


def _instead(result: LabelResult) -> str:
    """What a label without a recommendation needs: no true positive at any threshold."""
    wrong = [point.threshold for point in result.points if point.fp > 0]
    if result.positives == 0 and wrong:
        return f"raise above {number(max(wrong))} (only false positives)"
    if result.positives > 0:
        return "none: the model never finds it"
    return "none"


HEADERS = ("label", "positives (truth)", "recommended", "P / R / F1", "TP/FP/FN", "current: P / R / F1")


@dataclass(frozen=True)
class Reviewed:
    """Estimates per label at the current threshold, and the threshold recommended for the target."""

    labels: list[tuple[estimate.LabelEstimate, estimate.LabelEstimate | None]]
    reviewed: int
    population: int
    seed: int
    target: float
    # per label: the reviewed objects of it (positives) and the reviewed images that hold one
    evidence: dict[str, tuple[int, int]] = field(default_factory=dict)

    def thin(self, min_positives: int = MIN_POSITIVES) -> list[str]:
        """Labels whose estimates rest on fewer than ``min_positives`` reviewed objects."""
        return [now.label for now, _ in self.labels if self.evidence.get(now.label, (0, 0))[0] < min_positives]

    def as_dict(self) -> dict[str, Any]:
        return {
            "reviewed_images": self.reviewed,
            "population": self.population,
            "seed": self.seed,
            "target_precision": self.target,
            "estimator": "stratified ratio (Horvitz-Thompson totals), linearised variance, Wilson 95% at n*",
            "min_positives": MIN_POSITIVES,
            "labels": [
                {
                    "current": now.as_dict(),
                    "recommended": chosen.as_dict() if chosen else None,
                    "positives": self.evidence.get(now.label, (0, 0))[0],
                    "images_with_positives": self.evidence.get(now.label, (0, 0))[1],
                }
                for now, chosen in self.labels
            ],
        }


def reviewed(
    target: Target,
    manifest: Path,
    target_precision: float,
    *,
    iou: float = 0.5,
    prefix: str | None = None,
    source: Source | None = None,
) -> Reviewed:
    """Production precision and recall from a reviewed sample (``inferctl review``'s manifest)."""
    from inferctl.stack import review_session

    truth, sample = review_session.read_reviewed(manifest)
    thresholds = current_thresholds(target)
    wanted = set(truth.images)
    if source is not None and source.table is not None:
        documents = source.documents_for(wanted, prefix)
    else:
        documents = [d for d in uploads.iter_results(target, prefix) if (d.get("source") or {}).get("key") in wanted]
    units = estimate.units_from(documents, truth, sample, iou)
    if not units:
        raise OperationFailed(f"none of the {len(wanted)} reviewed images has a result on this stack")
    names = sorted({name for unit in units for name in (*unit.scored, *unit.positives)})
    labels = [
        (
            estimate.at(units, sample, name, thresholds.threshold_for(name)),
            estimate.recommend(units, sample, name, target_precision, floor=thresholds.candidate_floor),
        )
        for name in names
    ]
    evidence = {
        name: (
            sum(unit.positives.get(name, 0) for unit in units),
            sum(1 for unit in units if unit.positives.get(name, 0)),
        )
        for name in names
    }
    return Reviewed(labels, len(units), sum(sample.population.values()), sample.seed, target_precision, evidence)
