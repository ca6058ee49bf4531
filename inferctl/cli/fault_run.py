"""``fault-run``: a fault-injected end-to-end run on an embedded stack; nothing lost, nothing doubled."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from inferctl.cli.common import EXIT_LOST, EXIT_OK, count, fraction, positive


def register(commands: Any) -> None:
    faults = commands.add_parser(
        "fault-run",
        help="a fault-injected end-to-end run: nothing lost, nothing doubled",
        description=__doc__ + " Exit 1 when an image has no outcome or a write was doubled.",
    )
    faults.add_argument("--images", type=count, default=300, help="how many generated images (default 300)")
    faults.add_argument(
        "--throttle-rate",
        type=fraction,
        default=0.25,
        metavar="0-1",
        help="share of model calls answered with throttling (default 0.25)",
    )
    faults.add_argument(
        "--corrupt-rate",
        type=fraction,
        default=0.05,
        metavar="0-1",
        help="share of images that are corrupt (default 0.05)",
    )
    faults.add_argument(
        "--write-fail-rate",
        type=fraction,
        default=0.05,
        metavar="0-1",
        help="share of result writes that fail once (default 0.05)",
    )
    faults.add_argument(
        "--seed", type=int, default=7, help="the random seed: the same seed, the same faults (default 7)"
    )
    faults.add_argument(
        "--backend",
        choices=("sagemaker", "rekognition"),
        default="sagemaker",
        help="the model service (default sagemaker)",
    )
    faults.add_argument(
        "--out", type=Path, default=Path("out/fault-run"), help="where the report goes (default out/fault-run)"
    )
    faults.add_argument(
        "--timeout",
        type=positive,
        default=900.0,
        metavar="SECONDS",
        help="how long to wait for every outcome (default 900)",
    )
    faults.set_defaults(run=cmd_fault_run)


def cmd_fault_run(args: argparse.Namespace) -> int:
    from inferctl.scenarios.faults import FaultPlan, print_report, run

    plan = FaultPlan(
        images=args.images,
        throttle_rate=args.throttle_rate,
        corrupt_rate=args.corrupt_rate,
        write_fail_rate=args.write_fail_rate,
        seed=args.seed,
        backend=args.backend,
    )
    report = run(plan, args.out, timeout=args.timeout)
    print_report(report)
    (args.out / "report.json").write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
    return EXIT_OK if report.ok else EXIT_LOST
