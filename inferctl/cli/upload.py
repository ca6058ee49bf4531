"""``upload``: an image, or a folder of images, under the input prefix, optionally waiting for every outcome."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from inferctl.cli.common import EXIT_LOST, EXIT_OK, add_target, positive, target
from inferctl.console import counts_text, outcome_report
from inferctl.stack import uploads
from inferctl.stack.errors import UsageError
from inferctl.stack.outcomes import ImageState


def register(commands: Any) -> None:
    upload = commands.add_parser(
        "upload", help="upload an image or a folder of images under the input prefix", description=__doc__
    )
    upload.add_argument(
        "path",
        type=Path,
        nargs="?",
        metavar="PATH",
        help="an image, or a folder (its images keep their relative paths)",
    )
    upload.add_argument("--wait", action="store_true", help="wait for every image's outcome, with progress")
    upload.add_argument(
        "--timeout",
        type=positive,
        default=300.0,
        metavar="SECONDS",
        help="with --wait: how long to wait before reporting what has no outcome yet (default 300)",
    )
    add_target(upload)
    upload.set_defaults(run=cmd_upload)


def cmd_upload(args: argparse.Namespace) -> int:
    if args.path is None:
        taken = args.embedded and not str(args.embedded).endswith(".json")
        raise UsageError(
            "upload needs the image or folder to upload: inferctl upload PATH --embedded (or --stack NAME)"
            + (f"; {args.embedded!r} was read as --embedded's state file: put PATH first" if taken else "")
        )
    items, ignored = uploads.image_items(args.path)  # before the stack: a wrong path needs no AWS to say so
    stack = target(args)
    for path in ignored:
        print(f"skipped {path}: its suffix does not trigger the pipeline", file=sys.stderr)
    sent = uploads.upload_many(stack, items)
    print(f"uploaded {len(sent)} images to s3://{stack.bucket}/{stack.input_prefix}", file=sys.stderr)
    if not args.wait:
        return EXIT_OK
    try:
        found = uploads.wait_for(stack, [u.key for u in sent], args.timeout)
    except KeyboardInterrupt:
        where = "--embedded" if args.embedded else f"--stack {args.stack}"
        print(
            f"stopped waiting: the {len(sent)} uploaded images are in the pipeline and keep going; "
            f"see their outcomes with `inferctl audit {where}` or `inferctl results {where}`",
            file=sys.stderr,
        )
        raise
    return report(found)


def report(found: dict[str, ImageState]) -> int:
    text, counts = outcome_report(found)
    print(text)
    lost = counts.get("pending", 0)
    print(f"\n{len(found)} images: {counts_text(counts)}" + (f" -- {lost} without an outcome" if lost else ""))
    return EXIT_LOST if lost else EXIT_OK
