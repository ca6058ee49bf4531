"""``results``: the results as a table or JSON lines, optionally downloaded with annotated images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from inferctl.cli.common import EXIT_OK, add_target, target
from inferctl.console import labels_text, table
from inferctl.stack import uploads as images
from inferctl.stack.errors import UsageError


def register(commands: Any) -> None:
    results = commands.add_parser("results", help="list results (a table or JSON), optionally download them annotated")
    results.add_argument("--prefix", help="key prefix to list (default: the input prefix)")
    results.add_argument(
        "--format",
        choices=("table", "json", "jsonl"),
        default="table",
        help="table (default), a JSON array, or JSON lines (one document a line)",
    )
    results.add_argument("--download", type=Path, metavar="DIR", help="write JSON and annotated images here")
    add_target(results)
    results.set_defaults(run=cmd_results)


def cmd_results(args: argparse.Namespace) -> int:
    if args.download and args.download.exists() and not args.download.is_dir():
        raise UsageError(f"--download {args.download}: a file is there; name a folder (made when missing)")
    stack = target(args)
    documents = images.list_results(stack, args.prefix)
    if args.format == "json":
        print(json.dumps(documents, indent=2, ensure_ascii=False))
    elif args.format == "jsonl":
        for document in documents:
            print(json.dumps(document, ensure_ascii=False))
    else:
        rows = [(d["source"]["key"], d.get("status", "?"), labels_text(d)) for d in documents]
        print(table(rows, ("image", "status", "labels / error")))
    if args.download:
        written = images.download(stack, documents, args.download)
        print(f"wrote {len(written)} files under {args.download}", file=sys.stderr)
    return EXIT_OK
