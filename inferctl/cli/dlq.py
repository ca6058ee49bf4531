"""``dlq``: what is dead-lettered and why; the redrive after a fix."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from inferctl.cli.common import EXIT_OK, add_target, target
from inferctl.console import table
from inferctl.stack import deadletters


def register(commands: Any) -> None:
    dlq = commands.add_parser("dlq", help="show the dead-letter queue and why; optionally redrive it")
    dlq.add_argument("--redrive", action="store_true", help="move every message back to the source queue")
    dlq.add_argument(
        "--format",
        choices=("table", "json", "jsonl"),
        default="table",
        help="table (default), a JSON array, or JSON lines (one message a line)",
    )
    add_target(dlq)
    dlq.set_defaults(run=cmd_dlq)


def cmd_dlq(args: argparse.Namespace) -> int:
    stack = target(args)
    reports = deadletters.inspect_dlq(stack)
    lines = [
        {
            "message_id": item.letter.message_id,
            "keys": list(item.letter.keys),
            "receive_count": item.letter.receive_count,
            "last_error": item.last_error,
        }
        for item in reports
    ]
    if args.format == "json":
        print(json.dumps(lines, indent=2, ensure_ascii=False))
    elif args.format == "jsonl":
        for line in lines:
            print(json.dumps(line, ensure_ascii=False))
    else:
        rows = [
            (", ".join(r.letter.keys) or "(not an S3 event)", str(r.letter.receive_count), r.last_error or "unknown")
            for r in reports
        ]
        print(table(rows, ("image", "receives", "last error")))
        print(f"\n{len(reports)} messages in the dead-letter queue", file=sys.stderr)
    if args.redrive:
        moved = deadletters.redrive(stack)
        print(f"redrove {moved} messages to {stack.queue_url}", file=sys.stderr)
    return EXIT_OK
