"""What every command shares: the options that name a stack, -c context pairs, exit codes."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferctl.stack.errors import ConfigError, UsageError
from inferctl.stack.target import DEFAULT_STATE, Target, deployed, embedded

if TYPE_CHECKING:
    from inferctl.stack.tables import Source

EXIT_OK, EXIT_LOST, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def add_target(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("which stack (one of --stack and --embedded)")
    choice = where.add_mutually_exclusive_group(required=True)
    choice.add_argument("--stack", metavar="NAME", help="a deployed stack (its CloudFormation outputs)")
    choice.add_argument(
        "--embedded",
        metavar="STATE",
        nargs="?",
        const=str(DEFAULT_STATE),
        help=f"the embedded stack that `inferctl serve` runs (its state file, default {DEFAULT_STATE})",
    )
    where.add_argument("--profile", help="with --stack: the AWS profile (default: AWS_PROFILE, or the default one)")
    where.add_argument(
        "--region", help="with --stack: the region (default: AWS_REGION, AWS_DEFAULT_REGION, or the profile's)"
    )


def target(args: argparse.Namespace) -> Target:
    """The stack the options name; UsageError for options that do not go together."""
    if args.embedded:
        if args.profile or args.region:
            raise UsageError("--profile and --region are for a deployed stack (--stack NAME), not --embedded")
        state = Path(args.embedded)
        if state.is_dir() or state.suffix != ".json":
            raise UsageError(
                f"--embedded takes the embedded stack's state file (a .json, default {DEFAULT_STATE}), not "
                f"{args.embedded!r}: put a folder or file argument before the options"
            )
        return embedded(state)
    return deployed(args.stack, profile=args.profile, region=args.region)


# Argument types: a wrong value is refused by the parser, before any stack is looked up, with what it takes.
def fraction(text: str) -> float:
    """A fraction from 0 to 1 (a precision, a rate); a percentage is refused with its fraction."""
    value = _number(text)
    if not 0 <= value <= 1:
        hint = f" (a percentage? {value:g}% is {value / 100:g})" if 1 < value <= 100 else ""
        raise argparse.ArgumentTypeError(f"{text} is not a fraction from 0 to 1{hint}")
    return value


def overlap(text: str) -> float:
    """An IoU: above 0, at most 1."""
    value = _number(text)
    if not 0 < value <= 1:
        hint = f" (a percentage? {value:g}% is {value / 100:g})" if 1 < value <= 100 else ""
        raise argparse.ArgumentTypeError(f"{text} is not an IoU above 0 and at most 1{hint}")
    return value


def positive(text: str) -> float:
    """A number above 0 (seconds, days, a rate)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not above 0")
    return value


def count(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not 1 or more")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def add_context(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="CDK context override"
    )


def context(pairs: Sequence[str]) -> dict[str, Any]:
    """``-c key=value`` pairs, as the CDK CLI takes them (values parsed as JSON when they are JSON)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ConfigError("-c", f"expected key=value, got {pair!r}")
        try:
            values[key] = json.loads(value)
        except json.JSONDecodeError:
            values[key] = value
    return values


def add_engine(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=("auto", "athena", "duckdb", "scan"),
        default="auto",
        help="what reads the results: the outcome table (athena on a deployed stack, duckdb on the embedded one) or "
        "the scan of every document; auto (the default) scans under 10,000 objects and asks the table above",
    )


def source(
    args: argparse.Namespace, stack: Target, prefix: str | None = None, table_needed: str | None = None
) -> Source:
    """The engine the options ask for, opened (the embedded table synced); which one ran, and why, on stderr."""
    import sys

    from inferctl.stack.tables import open_source

    def say(text: str) -> None:
        print(text, file=sys.stderr)

    chosen = open_source(stack, args.engine, prefix, progress=say, table_needed=table_needed)
    say(f"engine: {chosen.reason}")
    return chosen
