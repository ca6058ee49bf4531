"""``serve``: an embedded stack kept running (until Ctrl-C) for the other commands to work on."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from inferctl.cli.common import EXIT_OK, add_context, context
from inferctl.cli.env import exports
from inferctl.stack.target import DEFAULT_STATE, read_state


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run an embedded stack until Ctrl-C")
    serve.add_argument("--state", type=Path, default=DEFAULT_STATE, help="where to write connection details")
    serve.add_argument(
        "--model",
        choices=("detector", "stand-in"),
        default="detector",
        help="detector (default): OpenCV's pretrained cascades; stand-in: the colour-blob model of the tests",
    )
    add_context(serve)
    serve.set_defaults(run=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from inferctl.emulator.stack import embedded_stack, write_state
    from inferctl.scenarios.demo.run import MODELS, demo_config, demo_models, served_lifecycles

    served = MODELS[args.model]
    config = demo_config(context(args.context), served.class_names, served.served_as)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # Ctrl-C or a service manager: stop cleanly either way
        signal.signal(signum, lambda *_: stop.set())
    with embedded_stack(
        config,
        demo_models(served.detect, served.served_as),
        log_path=args.state.parent / "lambda.log",
        capture_stdout=True,
        lifecycles=served_lifecycles(served.served_as),
    ) as stack:
        write_state(stack, args.state)
        print(f"model: {served.title} (finds {', '.join(served.class_names)})", file=sys.stderr)
        state = f" {args.state}" if args.state != DEFAULT_STATE else ""
        print(f"embedded stack up; details in {args.state}. For the AWS CLI and SDKs:", file=sys.stderr)
        print(exports(read_state(args.state)), file=sys.stderr)
        print(f'(or: eval "$(inferctl env --embedded{state})")', file=sys.stderr)
        print(f"try: inferctl upload FOLDER --embedded{state} --wait   (Ctrl-C stops)", file=sys.stderr)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            args.state.unlink(missing_ok=True)
    return EXIT_OK
