"""``model``: the configured model's status, start (waiting with progress) and stop."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from inferctl.cli.common import EXIT_INTERRUPTED, EXIT_LOST, EXIT_OK, add_target, count, positive, target
from inferctl.pricing import PRICES
from inferctl.stack import model_control


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "model", help="the configured model: status (state, capacity, cost today), start, stop"
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    show = verbs.add_parser("status", help="state, inference units or instances, since when, cost so far today")
    show.add_argument(
        "--price",
        type=positive,
        metavar="USD",
        help="USD per inference-unit hour or per instance hour (default: the us-east-1 list price, "
        f"{PRICES.rekognition_unit_hour:g} for a Rekognition unit)",
    )
    show.add_argument("--format", choices=("table", "json"), default="table", help="table (default) or JSON")
    add_target(show)
    show.set_defaults(run=cmd_status)
    start = verbs.add_parser("start", help="start the model and wait until it runs (Ctrl-C leaves it starting)")
    start.add_argument("--units", type=count, default=1, help="minimum inference units (default 1)")
    start.add_argument("--no-wait", action="store_true", help="return once the start is requested")
    start.add_argument(
        "--poll",
        type=positive,
        default=model_control.POLL_SECONDS,
        help="the longest wait between status checks in seconds (the first after 1 s, then twice as long each time)",
    )
    add_target(start)
    start.set_defaults(run=cmd_start)
    stop = verbs.add_parser("stop", help="stop the model (billing stops; images wait in the queue)")
    add_target(stop)
    stop.set_defaults(run=cmd_stop)


def cmd_status(args: argparse.Namespace) -> int:
    report = model_control.status(target(args), price=args.price)
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
    return EXIT_OK


def cmd_start(args: argparse.Namespace) -> int:
    try:
        found = model_control.start(
            target(args),
            units=args.units,
            wait=not args.no_wait,
            progress=lambda line: print(line, file=sys.stderr),
            poll_seconds=args.poll,
        )
    except KeyboardInterrupt:
        print("stopped waiting; the model keeps starting (inferctl model status)", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"model {found.model_id}: {found.state} ({found.service_status})")
    return EXIT_OK if args.no_wait or found.ready else EXIT_LOST


def cmd_stop(args: argparse.Namespace) -> int:
    found = model_control.stop(target(args))
    print(f"model {found.model_id}: {found.state} ({found.service_status}); images wait in the queue")
    return EXIT_OK
