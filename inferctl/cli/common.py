"""What every command shares: the --stack/--embedded target options, -c context pairs, exit codes."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inferctl.stack.errors import ConfigError
from inferctl.stack.target import DEFAULT_STATE, Target, deployed, embedded

EXIT_OK, EXIT_LOST, EXIT_USAGE = 0, 1, 2


def add_target(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--stack", metavar="NAME", help="a deployed stack (outputs read from CloudFormation)")
    group.add_argument(
        "--embedded",
        metavar="STATE",
        nargs="?",
        const=str(DEFAULT_STATE),
        help=f"the embedded stack started by `serve` (default state file: {DEFAULT_STATE})",
    )


def target(args: argparse.Namespace) -> Target:
    return deployed(args.stack) if args.stack else embedded(Path(args.embedded))


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
