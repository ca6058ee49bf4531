"""``smoke``: after a deploy, prove the pipeline end to end with one generated image."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from inferctl.cli.common import EXIT_LOST, EXIT_OK, add_target, positive, target
from inferctl.stack import smoke


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "smoke", help="upload one image, wait for its result, print latency and labels, clean up"
    )
    parser.add_argument("--timeout", type=positive, default=120.0, help="seconds to wait for the result (default 120)")
    parser.add_argument("--keep", action="store_true", help="leave the image and its result in the bucket")
    add_target(parser)
    parser.set_defaults(run=cmd_smoke)


def cmd_smoke(args: argparse.Namespace) -> int:
    result = smoke.run(target(args), timeout=args.timeout, keep=args.keep)
    if result.passed:
        labels = ", ".join(f"{name} {confidence:.1f}%" for name, confidence in result.labels) or "no labels"
        print(f"smoke passed: s3 key {result.key}: result in {result.seconds:.1f} s; {labels}")
    else:
        print(f"smoke FAILED after {result.seconds:.1f} s: {result.key}: {result.reason}", file=sys.stderr)
    if not args.keep:
        print(
            f"cleaned up {result.cleaned} object versions of the image; its result expires with the bucket's "
            "expire-smoke-tests rule after a day",
            file=sys.stderr,
        )
    return EXIT_OK if result.passed else EXIT_LOST
