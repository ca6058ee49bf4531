"""``results``: the results as a table or JSON lines, optionally downloaded with annotated images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from inferctl.cli.common import EXIT_OK, add_engine, add_target, source, target
from inferctl.console import labels_text, table
from inferctl.stack import uploads
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
    add_engine(results)
    add_target(results)
    results.set_defaults(run=cmd_results)


TABLE_PAGE = 1000  # a table is printed a page at a time: its widths fit the page, memory stays flat


def cmd_results(args: argparse.Namespace) -> int:
    if args.download and args.download.exists() and not args.download.is_dir():
        raise UsageError(f"--download {args.download}: a file is there; name a folder (made when missing)")
    stack = target(args)
    documents = source(args, stack, args.prefix).documents(args.prefix)  # streamed: flat memory at any count
    downloader = uploads.Downloader(stack, args.download) if args.download else None
    rows: list[tuple[str, ...]] = []
    count = 0
    if args.format == "json":
        print("[")
    for document in documents:
        if args.format == "json":
            text = json.dumps(document, indent=2, ensure_ascii=False)
            print(("," if count else "") + "\n".join("  " + line for line in text.splitlines()))
        elif args.format == "jsonl":
            print(json.dumps(document, ensure_ascii=False))
        else:
            rows.append((document["source"]["key"], document.get("status", "?"), labels_text(document)))
            if len(rows) == TABLE_PAGE:
                print(table(rows, ("image", "status", "labels / error")))
                rows = []
        count += 1
        if downloader:
            downloader.add(document)
    if args.format == "json":
        print("]")
    elif args.format == "table" and (rows or not count):
        print(table(rows, ("image", "status", "labels / error")))
    if downloader:
        print(f"wrote {downloader.written} files under {args.download}", file=sys.stderr)
    return EXIT_OK
