"""``upload``: a folder of images under the input prefix, optionally waiting for every outcome."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from inferctl.cli.common import EXIT_LOST, EXIT_OK, EXIT_USAGE, add_target, target
from inferctl.console import counts_text, outcome_report
from inferctl.stack import uploads as images
from inferctl.stack.outcomes import ImageState


def register(commands: Any) -> None:
    upload = commands.add_parser("upload", help="upload a folder under the input prefix")
    upload.add_argument("folder", type=Path)
    upload.add_argument("--wait", action="store_true", help="wait for every image's outcome, with progress")
    upload.add_argument("--timeout", type=float, default=300.0)
    add_target(upload)
    upload.set_defaults(run=cmd_upload)


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
