"""``reprocess`` and ``audit``: images that were there before the notifications, re-runs after a model or
threshold change, and the proof that every image has its outcome."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import IO, Any

from inferctl import backfill
from inferctl.cli.common import EXIT_LOST, EXIT_OK, add_target, target
from inferctl.console import table


def register(commands: Any) -> None:
    reprocess = commands.add_parser("reprocess", help="enqueue existing images (missing, errors, stale, all)")
    choice = reprocess.add_mutually_exclusive_group(required=True)
    choice.add_argument("--missing", action="store_true", help="images with no outcome document")
    choice.add_argument("--errors", action="store_true", help="images with an error document")
    choice.add_argument("--stale", action="store_true", help="results of another model, schema or thresholds")
    choice.add_argument("--all", action="store_true", help="every image (a forced re-run)")
    reprocess.add_argument("--code", action="append", default=[], help="with --errors: only this error code")
    reprocess.add_argument("--prefix", help="a sub-prefix of the input prefix (default: all of it)")
    reprocess.add_argument("--dry-run", action="store_true", help="count what would be enqueued, send nothing")
    reprocess.add_argument("--rate", type=float, default=10.0, help="messages per second (the model's pace)")
    reprocess.add_argument(
        "--state", type=Path, default=Path("out/reprocess.json"), help="where progress is kept (for --resume)"
    )
    reprocess.add_argument("--resume", action="store_true", help="continue the run recorded in --state")
    add_target(reprocess)
    reprocess.set_defaults(run=cmd_reprocess)

    audit = commands.add_parser("audit", help="every image's state; exit 1 when any has no outcome and is late")
    audit.add_argument("--prefix", help="a sub-prefix of the input prefix (default: all of it)")
    audit.add_argument("--format", choices=("table", "json", "csv"), default="table")
    audit.add_argument("--output", type=Path, help="write one row per image here (JSON lines or CSV)")
    add_target(audit)
    audit.set_defaults(run=cmd_audit)


def cmd_reprocess(args: argparse.Namespace) -> int:
    selection = backfill.Selection(
        missing=args.missing, errors=args.errors, codes=frozenset(args.code), stale=args.stale, all=args.all
    )
    if args.state:
        args.state.parent.mkdir(parents=True, exist_ok=True)

    def show(progress: backfill.Progress) -> None:
        print(f"listed {progress.listed}, selected {progress.selected}, enqueued {progress.enqueued}", file=sys.stderr)

    report = backfill.reprocess(
        target(args),
        selection,
        prefix=args.prefix,
        dry_run=args.dry_run,
        per_second=args.rate,
        state=None if args.dry_run else args.state,
        resume=args.resume,
        on_progress=show,
    )
    reasons = ", ".join(f"{reason}={count}" for reason, count in sorted(report.by_reason.items())) or "none"
    verb = "would enqueue" if args.dry_run else "enqueued"
    print(f"{report.listed} images listed, {report.selected} selected ({reasons}); {verb} {report.enqueued}")
    if report.skipped:
        left = ", ".join(f"{why}={count}" for why, count in sorted(report.skipped.items()))
        print(f"left alone: {left} (dead letters return with `inferctl dlq --redrive`; waiting ones are on their way)")
    if report.interrupted:
        print(f"interrupted: resume with --resume --state {args.state}", file=sys.stderr)
        return EXIT_LOST
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    handle: IO[str] | None = args.output.open("w", encoding="utf-8", newline="") if args.output else None
    writer: Any = None
    if handle and args.format == "csv":
        writer = csv.DictWriter(handle, fieldnames=["key", "state", "code", "last_modified"])
        writer.writeheader()

    def write_row(row: dict[str, Any]) -> None:
        if writer is not None:
            writer.writerow(row)
        elif handle is not None:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    def show(count: int) -> None:
        if count % 1000 == 0:
            print(f"audited {count} images", file=sys.stderr)

    try:
        result = backfill.audit(target(args), prefix=args.prefix, write_row=write_row, on_image=show)
    finally:
        if handle:
            handle.close()
    if args.format == "json":
        print(json.dumps(result.as_dict(), indent=2))
    else:
        rows = [(state, result.counts.get(state, 0)) for state in backfill.STATES]
        rows += [(f"  error {code}", count) for code, count in sorted(result.error_codes.items())]
        print(table(rows, ("state", "images")))
        print(f"\n{result.images} images; {result.missing} without an outcome and not waiting")
    return EXIT_LOST if result.missing else EXIT_OK
