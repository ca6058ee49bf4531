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


def register(commands: Any) -> None:
    results = commands.add_parser("results", help="list results (table or JSON lines), optionally download them")
    results.add_argument("--prefix", help="key prefix to list (default: the input prefix)")
    results.add_argument("--format", choices=("table", "jsonl"), default="table")
    results.add_argument("--download", type=Path, metavar="DIR", help="write JSON and annotated images here")
    add_target(results)
    results.set_defaults(run=cmd_results)


def cmd_results(args: argparse.Namespace) -> int:
    stack = target(args)
    documents = images.list_results(stack, args.prefix)
    if args.format == "jsonl":
        for document in documents:
            print(json.dumps(document, ensure_ascii=False))
    else:
        rows = [(d["source"]["key"], d.get("status", "?"), labels_text(d)) for d in documents]
        print(table(rows, ("image", "status", "labels / error")))
    if args.download:
        written = images.download(stack, documents, args.download)
        print(f"wrote {len(written)} files under {args.download}", file=sys.stderr)
    return EXIT_OK
