"""``drift``: what the model says now against before: per label, accepted share, near-threshold share and
confidences, with the tests of ``evaluation/drift.py``."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from inferctl.cli.common import EXIT_OK, add_engine, add_target, positive, source, target
from inferctl.console import table
from inferctl.evaluation import drift
from inferctl.stack import configuration, questions, uploads
from inferctl.stack.errors import OperationFailed, UsageError


def register(commands: Any) -> None:
    command = commands.add_parser("drift", help="compare two windows of results: what moved, per label")
    command.add_argument("--days", type=positive, default=1.0, help="each window's length in days (default 1)")
    command.add_argument("--split", help="ISO time between the windows (default: now minus --days)")
    command.add_argument("--format", choices=("table", "json"), default="table", help="table (default) or JSON")
    command.add_argument("--prefix", help="key prefix of the results (default: the input prefix)")
    add_engine(command)
    add_target(command)
    command.set_defaults(run=cmd_drift)


def cmd_drift(args: argparse.Namespace) -> int:
    try:
        split = datetime.fromisoformat(args.split.replace("Z", "+00:00")) if args.split else None
    except ValueError:
        raise UsageError(f"--split {args.split!r} is not an ISO time (e.g. 2026-11-28T00:00:00Z)") from None
    since, middle, until = drift.bounds(split, args.days, datetime.now(UTC))
    stack = target(args)
    thresholds = configuration.live_settings(stack).thresholds
    chosen = source(args, stack, args.prefix)
    summed = None
    if chosen.table is None:
        before, after = drift.windows(uploads.iter_results(stack, args.prefix), middle, thresholds, since, until)
    else:
        moments = [datetime.fromisoformat(text.replace("Z", "+00:00")) for text in (since, middle, until)]
        answer = questions.drift_windows(chosen.table, args.prefix or stack.input_prefix, thresholds, *moments)
        before, after, summed = answer.before, answer.after, answer.ks
    if not before.images or not after.images:
        raise OperationFailed(
            f"{before.images} results before {middle} and {after.images} after it: both windows need results "
            "(choose --split or --days)"
        )
    findings = drift.compare(before, after, summed)
    if args.format == "json":
        print(json.dumps({"before": before.images, "after": after.images, "findings": [f.as_dict() for f in findings]}))
        return EXIT_OK
    print(f"{before.images} results before {middle}, {after.images} after (windows of {args.days:g} days)")
    if not findings:
        print(f"nothing moved (two-proportion z and Kolmogorov-Smirnov tests at {drift.ALPHA:g})")
        return EXIT_OK
    rows = [
        (f.label, f.measure, f"{f.before:.3g}", f"{f.after:.3g}", f"{f.statistic:.3g} > {f.critical:.3g}")
        for f in findings
    ]
    print(table(rows, ("label", "measure", "before", "after", "test statistic")))
    print("a moved near-threshold share is when a review round pays: inferctl review")
    return EXIT_OK
