"""``evaluate``: results against ground truth, per label, with recommended thresholds and a report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from inferctl.cli.common import EXIT_OK, add_engine, add_target, fraction, overlap, source, target
from inferctl.console import number, table
from inferctl.evaluation import compare, model_summary
from inferctl.evaluation.evaluate import MIN_POSITIVES
from inferctl.stack import configuration, scoring
from inferctl.stack.errors import OperationFailed


def register(commands: Any) -> None:
    evaluate = commands.add_parser("evaluate", help="results against ground truth: P/R/F1 per label, thresholds")
    truth = evaluate.add_mutually_exclusive_group(required=True)
    truth.add_argument(
        "--ground-truth",
        type=Path,
        metavar="MANIFEST|DIR",
        help="a SageMaker Ground Truth / Custom Labels manifest (JSON lines), or a folder per class",
    )
    truth.add_argument(
        "--reviewed",
        type=Path,
        metavar="MANIFEST",
        help="the manifest `inferctl review` wrote: production precision and recall estimated with 95%% intervals",
    )
    evaluate.add_argument(
        "--iou", type=overlap, default=0.5, metavar="0-1", help="boxes match at this IoU or more (default 0.5)"
    )
    evaluate.add_argument(
        "--min-precision",
        type=fraction,
        metavar="0-1",
        help="recommend the threshold with the most recall at this precision or more (default: the best F1)",
    )
    evaluate.add_argument("--report", type=Path, metavar="HTML", help="write the report here")
    evaluate.add_argument("--json", type=Path, metavar="FILE", help="write the numbers here")
    evaluate.add_argument(
        "--format", choices=("table", "json"), default="table", help="print tables (default) or the numbers as JSON"
    )
    evaluate.add_argument("--apply", action="store_true", help="set the recommended per-label thresholds")
    evaluate.add_argument(
        "--force",
        action="store_true",
        help="with --apply: also labels whose recommendation rests on fewer than 10 positives",
    )
    evaluate.add_argument("--prefix", help="key prefix of the results (default: the input prefix)")
    add_engine(evaluate)
    add_target(evaluate)
    evaluate.set_defaults(run=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    given = args.reviewed or args.ground_truth
    if not given.exists():  # before the stack: a wrong path needs no AWS to say so
        raise FileNotFoundError(2, "No such file or directory", str(given))
    if args.reviewed:
        return cmd_reviewed(args)
    stack = target(args)
    outcome = scoring.run(
        stack,
        args.ground_truth,
        iou=args.iou,
        min_precision=args.min_precision,
        prefix=args.prefix,
        source=source(args, stack, args.prefix),
    )
    evaluation = outcome.evaluation
    for warning in evaluation.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not evaluation.evaluated:
        raise OperationFailed(f"0 images evaluated: {scoring.none_evaluated(outcome, stack)}")
    own = model_evaluation(stack)
    numbers = {
        **evaluation.as_dict(),
        "model_evaluation": {k: v.__dict__ for k, v in own.items()},
        "comparison": outcome.comparison.as_dict() if outcome.comparison else None,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(numbers, indent=2), encoding="utf-8")
    if args.format == "json":
        print(json.dumps(numbers, indent=2))
        return finish(args, stack, outcome)
    print(table(scoring.rows(evaluation), scoring.HEADERS))
    print(
        f"\n{len(evaluation.evaluated)} images evaluated; {len(evaluation.not_evaluated)} without a result or with "
        f"an error; exact at or above the candidate floor ({evaluation.floor:g}%)"
    )
    comparison = outcome.comparison
    if comparison is not None:
        print(
            f"\nModels compared on the {comparison.images} images both answered "
            f"(they accept the same labels on {100 * comparison.agreement:.0f}% of them):"
        )
        print(table(compare.model_rows(comparison), compare.MODEL_HEADERS))
        print(table(compare.label_rows(comparison), compare.LABEL_HEADERS))
        print(compare.advice(comparison), file=sys.stderr)
    if own:
        ours = {result.label: result.recommended for result in evaluation.labels}
        lines = []
        for label, summary in sorted(own.items()):
            mine = ours.get(label)
            lines.append(
                (
                    label,
                    number(summary.threshold),
                    f"{_pct(summary.precision)} / {_pct(summary.recall)} / {_pct(summary.f1)}",
                    number(mine.threshold) if mine else "none",
                )
            )
        print("\nThe model's own evaluation (Rekognition Custom Labels, its test set) beside ours:")
        print(table(lines, ("label", "its threshold", "its P / R / F1", "ours")))
    return finish(args, stack, outcome)


def finish(args: argparse.Namespace, stack: Any, outcome: scoring.Outcome) -> int:
    """The report and --apply, after the numbers are out."""
    if args.report:
        written = scoring.write_report(stack, outcome, args.report, f"Evaluation of {stack.description}")
        print(f"report: {written}", file=sys.stderr)
    force = bool(getattr(args, "force", False))
    recommended = outcome.evaluation.recommendations(0 if force else MIN_POSITIVES)
    thin = [] if force else outcome.evaluation.thin()
    if args.apply and thin:
        print(
            f"not applied: {', '.join(thin)} (fewer than {MIN_POSITIVES} positives in the ground truth; "
            "label more images, or add --force)",
            file=sys.stderr,
        )
    if args.apply and recommended:
        applied = configuration.apply(stack, {"label_thresholds": recommended})
        print(f"applied the recommended thresholds (revision {applied.revision_id})", file=sys.stderr)
    elif args.apply:
        print("nothing to apply: no label has a recommended threshold that may be applied", file=sys.stderr)
    return EXIT_OK


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def model_evaluation(stack: Any) -> dict[str, Any]:
    """The configured Rekognition model's own evaluation summary, when there is one and we may read it."""
    live = configuration.read_live(stack).environment
    if live.get("BACKEND", "rekognition") != "rekognition" or not live.get("REKOGNITION_MODEL_ARN"):
        return {}
    try:
        return model_summary.read(stack.client("rekognition"), stack.client("s3"), live["REKOGNITION_MODEL_ARN"])
    except Exception as exc:  # noqa: BLE001 - the comparison is a nicety; our own numbers stand
        print(f"(the model's own evaluation is not available: {exc})", file=sys.stderr)
        return {}


REVIEWED_HEADERS = (
    "label",
    "threshold",
    "precision (95% interval)",
    "recall (95% interval)",
    "F1",
    "recommended",
    "rests on",
)


def _interval(estimate: Any) -> str:
    if estimate.value is None:
        return "-"
    return f"{100 * estimate.value:.1f}% ({100 * estimate.low:.1f}-{100 * estimate.high:.1f})"


def cmd_reviewed(args: argparse.Namespace) -> int:
    """Production precision and recall per label from a reviewed sample (``evaluation/estimate.py``)."""
    stack = target(args)
    target_precision = args.min_precision if args.min_precision is not None else 0.9
    result = scoring.reviewed(
        stack,
        args.reviewed,
        target_precision,
        iou=args.iou,
        prefix=args.prefix,
        source=source(args, stack, args.prefix),
    )
    numbers = result.as_dict()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(numbers, indent=2), encoding="utf-8")
    if args.format == "json":
        print(json.dumps(numbers, indent=2))
        return EXIT_OK
    rows = []
    without: list[str] = []
    for current, chosen in result.labels:
        for what, interval in (("precision", current.precision), ("recall", current.recall)):
            if interval.value is None and interval.why_none:
                without.append(f"{current.label}: no {what} estimate: {interval.why_none}")
        recommended = (
            f"{chosen.threshold:g} (precision >= {100 * (chosen.precision.low or 0):.1f}%)" if chosen else "none holds"
        )
        positives, holding = result.evidence.get(current.label, (0, 0))
        evidence = f"{positives} positives in {holding} of {result.reviewed} images"
        if positives < MIN_POSITIVES:
            evidence += f" (few: under {MIN_POSITIVES})"
        rows.append(
            (
                current.label,
                f"{current.threshold:g}",
                _interval(current.precision),
                _interval(current.recall),
                "-" if current.f1 is None else f"{100 * current.f1:.1f}%",
                recommended,
                evidence,
            )
        )
    print(table(rows, REVIEWED_HEADERS))
    if without:
        print("\n" + "\n".join(without))
    thin = result.thin()
    if thin:
        print(
            f"\nfew reviewed objects for {', '.join(thin)} (under {MIN_POSITIVES} each): their intervals are wide and "
            "their recommendations tentative; review more images of them (inferctl review --budget N)",
            file=sys.stderr,
        )
    print(
        f"\n{result.reviewed} reviewed images standing for {result.population} results "
        f"(stratified sample, seed {result.seed}); intervals: Wilson at the effective sample size of a linearised "
        f"ratio (docs/operator-guide.md#reviewing-production-images). Recommended: the lowest threshold whose "
        f"precision interval lies at or above {100 * target_precision:g}%."
    )
    return EXIT_OK
