"""inferctl: the operator's tool for the image-inference stack, deployed (--stack NAME, found with the usual
AWS configuration: AWS_PROFILE, AWS_REGION, SSO) or embedded (--embedded, the stack `inferctl serve` runs).

Exit codes: 0 success; 1 images without an outcome, or an operation that did not succeed; 2 a usage or
configuration error, said in one line with what to do; 3 a bug (--debug shows its traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from inferctl.cli import (
    audit,
    challenger,
    cost,
    demo,
    dlq,
    drift,
    env,
    evaluate,
    fault_run,
    model,
    query,
    reprocess,
    results,
    review,
    serve,
    smoke,
    thresholds,
    upload,
)
from inferctl.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from inferctl.cli.exits import explain

# One module per command, named as the command (``fault-run``: fault_run.py); each adds itself with ``register``.
COMMANDS = (
    upload,
    results,
    dlq,
    reprocess,
    audit,
    query,
    thresholds,
    evaluate,
    review,
    drift,
    challenger,
    model,
    cost,
    smoke,
    demo,
    serve,
    env,
    fault_run,
)


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are one line that says where the options are explained (not the whole
    usage block: the line with the mistake is what a reader needs)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (`{self.prog} --help` explains every option)\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """The description as written, and the command names in a column wide enough for the longest."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=24)
        self._action_max_length = 16  # "    thresholds" and its help on one line


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="inferctl", description=__doc__, formatter_class=_Formatter)
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    for command in COMMANDS:
        command.register(commands)
    _debug_everywhere(commands)
    return parser


def _debug_everywhere(commands: argparse._SubParsersAction[Any]) -> None:
    """``--debug`` after the command too (``inferctl model stop --embedded --debug``), where people add it."""
    for parser in commands.choices.values():
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            _debug_everywhere(nested[0])
        else:
            parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
        sys.stdout.flush()  # here, not at exit: a reader that went away is met inside the handler below
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``| head``): nothing more to say, and nobody to say it to.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        if args.debug:
            raise
        code, message = explain(exc)
        print(f"error: {message}", file=sys.stderr)
        return code
    return code
