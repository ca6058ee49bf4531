"""``upload`` and ``results``: images in, results out, on any stack."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from inferctl import images
from inferctl.cli.common import EXIT_LOST, EXIT_OK, EXIT_USAGE, add_target, target
from inferctl.console import counts_text, labels_text, outcome_report, table
from inferctl.outcomes import ImageState


def register(commands: Any) -> None:
    upload = commands.add_parser("upload", help="upload a folder under the input prefix")
    upload.add_argument("folder", type=Path)
    upload.add_argument("--wait", action="store_true", help="wait for every image's outcome, with progress")
    upload.add_argument("--timeout", type=float, default=300.0)
    add_target(upload)
    upload.set_defaults(run=cmd_upload)

    results = commands.add_parser("results", help="list results (table or JSON lines), optionally download them")
    results.add_argument("--prefix", help="key prefix to list (default: the input prefix)")
    results.add_argument("--format", choices=("table", "jsonl"), default="table")
    results.add_argument("--download", type=Path, metavar="DIR", help="write JSON and annotated images here")
    add_target(results)
    results.set_defaults(run=cmd_results)


def cmd_upload(args: argparse.Namespace) -> int:
    stack = target(args)
    files, ignored = images.image_files(args.folder)
    for path in ignored:
        print(f"skipped {path}: its suffix does not trigger the pipeline", file=sys.stderr)
    if not files:
        print(f"no images under {args.folder}", file=sys.stderr)
        return EXIT_USAGE
    items = [(path.relative_to(args.folder).as_posix(), path.read_bytes()) for path in files]
    uploads = images.upload_many(stack, items)
    print(f"uploaded {len(uploads)} images to s3://{stack.bucket}/{stack.input_prefix}", file=sys.stderr)
    if not args.wait:
        return EXIT_OK
    return report(images.wait_for(stack, [u.key for u in uploads], args.timeout))


def report(found: dict[str, ImageState]) -> int:
    text, counts = outcome_report(found)
    print(text)
    lost = counts.get("pending", 0)
    print(f"\n{len(found)} images: {counts_text(counts)}" + (f" -- {lost} without an outcome" if lost else ""))
    return EXIT_LOST if lost else EXIT_OK


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
