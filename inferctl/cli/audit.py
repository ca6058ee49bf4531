"""``audit``: every image's state, and the proof that each has its outcome (exit 1 when one is late)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import IO, Any

from inferctl.cli.common import EXIT_LOST, EXIT_OK, add_engine, add_target, source, target
from inferctl.console import table
from inferctl.stack import audit, configuration, questions, reconcile
from inferctl.stack.errors import UsageError


def register(commands: Any) -> None:
    parser = commands.add_parser("audit", help="every image's state; exit 1 when any has no outcome and is late")
    parser.add_argument("--prefix", help="a sub-prefix of the input prefix (default: all of it)")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.add_argument("--output", type=Path, help="write one row per image here (JSON lines or CSV)")
    parser.add_argument(
        "--reconcile",
        action="store_true",
        help="with the table: also find outcome documents whose row the table lacks, and send their rows again",
    )
    add_engine(parser)
    add_target(parser)
    parser.set_defaults(run=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> int:
    handle: IO[str] | None = args.output.open("w", encoding="utf-8", newline="") if args.output else None
    writer: Any = None
    if handle and args.format == "csv":
        writer = csv.DictWriter(handle, fieldnames=["key", "state", "code", "why", "last_modified"])
        writer.writeheader()

    def write_row(row: dict[str, Any]) -> None:
        if writer is not None:
            writer.writerow(row)
        elif handle is not None:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    def show(count: int) -> None:
        if count % 1000 == 0:
            print(f"audited {count} images", file=sys.stderr)

    stack = target(args)
    chosen = source(
        args, stack, args.prefix, "--reconcile compares the bucket with the table" if args.reconcile else None
    )
    if args.reconcile and chosen.table is None:
        raise UsageError(
            "--reconcile compares the bucket with the outcome table: use it with --engine athena or duckdb"
        )
    try:
        if chosen.table is None:
            result = audit.audit(stack, prefix=args.prefix, write_row=write_row, on_image=show)
        else:
            images = chosen.images(configuration.live_settings(stack).image_suffixes, args.prefix)
            settled = audit.settled_now(stack)
            result = questions.audit(chosen.table, images, settled, write_row if handle else None)
            if args.reconcile:
                sent = reconcile.resend(stack, chosen.table, images)
                print(reconcile.summary(sent), file=sys.stderr)
    finally:
        if handle:
            handle.close()
    if args.format == "json":
        print(json.dumps(result.as_dict(), indent=2))
    else:
        rows = [(state, result.counts.get(state, 0)) for state in audit.STATES]
        rows += [(f"  error {code}", count) for code, count in sorted(result.error_codes.items())]
        print(table(rows, ("state", "images")))
        print(f"\n{result.images} images; {result.missing} without an outcome and not waiting")
    return EXIT_LOST if result.missing else EXIT_OK
