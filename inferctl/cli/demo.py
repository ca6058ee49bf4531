"""``demo``: the whole pipeline on an embedded stack with a local model, on this machine, with no AWS account."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from inferctl.cli.common import add_context, context, positive


def register(commands: Any) -> None:
    demo = commands.add_parser("demo", help="run the pipeline end to end on an embedded stack")
    demo.add_argument(
        "--images",
        type=Path,
        metavar="PATH",
        help="your own images: a folder or one image (default: real photographs with hand-checked ground truth)",
    )
    demo.add_argument(
        "--model",
        choices=("detector", "stand-in"),
        default="detector",
        help="detector (default): OpenCV's pretrained face, eye, cat-face, person and number-plate cascades; "
        "stand-in: a colour-blob model on generated scenes (deterministic, what most tests use)",
    )
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help="where results go (default: out/demo)")
    add_context(demo)
    demo.add_argument(
        "--timeout",
        type=positive,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for every outcome (default 120)",
    )
    demo.add_argument(
        "--auto-start",
        action="store_true",
        help="auto mode: the Rekognition model starts STOPPED, the controller starts it for the images and "
        "stops it after 6 s idle",
    )
    demo.add_argument(
        "--challenger",
        action="store_true",
        help="run a worse copy of the demo model in shadow and end with the side-by-side comparison",
    )
    demo.add_argument(
        "--review",
        nargs="?",
        const="person",
        choices=("person", "scripted"),
        help="end with a review round: print the review page's URL and wait (person, the default), or review "
        "headless with the scenes' ground truth (scripted)",
    )
    demo.set_defaults(run=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from inferctl.scenarios.demo.run import run_demo

    return run_demo(
        args.images,
        args.out,
        context(args.context),
        args.timeout,
        auto_start=args.auto_start,
        challenger=args.challenger,
        review=args.review,
        model_name=args.model,
    )
