"""``demo``, ``serve`` and ``fault-run``: the embedded stack on this machine, with no AWS account."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from inferctl.cli.common import EXIT_LOST, EXIT_OK, add_context, context
from inferctl.target import DEFAULT_STATE


def register(commands: Any) -> None:
    demo = commands.add_parser("demo", help="run the pipeline end to end on an embedded stack")
    demo.add_argument("--images", type=Path, help="a folder of your own images (default: generated samples)")
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help="where results go (default: out/demo)")
    add_context(demo)
    demo.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for every outcome")
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
    demo.set_defaults(run=cmd_demo)

    serve = commands.add_parser("serve", help="run an embedded stack until Ctrl-C")
    serve.add_argument("--state", type=Path, default=DEFAULT_STATE, help="where to write connection details")
    add_context(serve)
    serve.set_defaults(run=cmd_serve)

    faults = commands.add_parser("fault-run", help="a fault-injected end-to-end run: nothing lost, nothing doubled")
    faults.add_argument("--images", type=int, default=300)
    faults.add_argument("--throttle-rate", type=float, default=0.25)
    faults.add_argument("--corrupt-rate", type=float, default=0.05)
    faults.add_argument("--write-fail-rate", type=float, default=0.05)
    faults.add_argument("--seed", type=int, default=7)
    faults.add_argument("--backend", choices=("sagemaker", "rekognition"), default="sagemaker")
    faults.add_argument("--out", type=Path, default=Path("out/fault-run"))
    faults.add_argument("--timeout", type=float, default=900.0)
    faults.set_defaults(run=cmd_fault_run)


def cmd_demo(args: argparse.Namespace) -> int:
    from inferctl.demo.run import run_demo

    return run_demo(
        args.images,
        args.out,
        context(args.context),
        args.timeout,
        auto_start=args.auto_start,
        challenger=args.challenger,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from inferctl.demo.run import demo_config, demo_models
    from inferctl.emulator.stack import embedded_stack, write_state

    config = demo_config(context(args.context))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # Ctrl-C or a service manager: stop cleanly either way
        signal.signal(signum, lambda *_: stop.set())
    with embedded_stack(config, demo_models(), log_path=args.state.parent / "lambda.log", capture_stdout=True) as stack:
        write_state(stack, args.state)
        print(f"embedded stack up at {stack.emulator.endpoint_url}; details in {args.state}", file=sys.stderr)
        print("try: inferctl upload FOLDER --embedded --wait   (Ctrl-C stops)", file=sys.stderr)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            args.state.unlink(missing_ok=True)
    return EXIT_OK


def cmd_fault_run(args: argparse.Namespace) -> int:
    from inferctl.faults import FaultPlan, print_report, run

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
