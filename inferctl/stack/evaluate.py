"""``inferctl evaluate``: the stack's stored results against ground truth; a table, JSON and the HTML report;
``--apply`` sets the recommended per-label thresholds through the safe configuration path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferctl.console import number
from inferctl.evaluation import groundtruth, report
from inferctl.evaluation.compare import Comparison, advice, compare
from inferctl.evaluation.evaluate import Evaluation, evaluate
from inferctl.evaluation.evaluate import none_evaluated as explain_none
from inferctl.stack import configuration
from inferctl.stack import uploads as images
from inferctl.stack.target import Target
from lambdas.inference.core.thresholds import Thresholds
from lambdas.inference.settings import COMMON, Settings

LIVE = {variable.field: variable for variable in COMMON if variable.live}


@dataclass(frozen=True)
class Outcome:
    evaluation: Evaluation
    documents: list[dict[str, Any]]  # the results of the ground truth's images (the rest are not kept)
    truth: groundtruth.GroundTruth
    thresholds: Thresholds
    comparison: Comparison | None = None  # when results carry a challenger's answers
    first_other: dict[str, Any] | None = None  # the first result (by key) of an image the ground truth lacks


def current_thresholds(target: Target) -> Thresholds:
    return Settings.from_env(configuration.read_live(target).environment).thresholds


def run(
    target: Target,
    truth_path: Path,
    *,
    iou: float = 0.5,
    min_precision: float | None = None,
    prefix: str | None = None,
) -> Outcome:
    truth = groundtruth.load(truth_path, target.input_prefix)
    # Streamed: only the ground truth's images are kept (memory follows the manifest, not the bucket)
    documents: list[dict[str, Any]] = []
    first_other: dict[str, Any] | None = None
    for document in images.iter_results(target, prefix):
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


def write_report(target: Target, outcome: Outcome, path: Path, title: str) -> Path:
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
    return report.write(path, outcome.evaluation, items, title, outcome.thresholds.min_confidence, comparison)


def rows(evaluation: Evaluation) -> list[tuple[str, ...]]:
    """The terminal table: per label, the recommendation with its counts, and where the current threshold is."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.0f}%"

    table: list[tuple[str, ...]] = []
    for result in evaluation.labels:
        r, c = result.recommended, result.current
        table.append(
            (
                result.label,
                str(result.positives),
                number(r.threshold) if r else "none",
                f"{pct(r.precision)} / {pct(r.recall)} / {pct(r.f1)}" if r else "",
                f"{r.tp}/{r.fp}/{r.fn}" if r else "",
                f"{number(c.threshold)}: {pct(c.precision)} / {pct(c.recall)} / {pct(c.f1)}",
            )
        )
    return table


HEADERS = ("label", "truth", "recommended", "P / R / F1", "TP/FP/FN", "current: P / R / F1")
