"""``challenger``: promote the challenger to primary (the primary becomes the challenger), or retire it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from inferctl.cli.common import EXIT_OK, add_target, target
from inferctl.stack import promotion
from inferctl.stack.configuration import CDK_JSON


def register(commands: Any) -> None:
    parser = commands.add_parser("challenger", help="promote the challenger model to primary, or retire it")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, text in (
        ("promote", "swap challenger and primary (the old primary stays in shadow)"),
        ("retire", "remove the challenger; the primary stays"),
    ):
        command = verbs.add_parser(verb, help=text)
        command.add_argument("--dry-run", action="store_true", help="show the change, send nothing")
        command.add_argument(
            "--write-context",
            nargs="?",
            type=Path,
            const=CDK_JSON,
            metavar="CDK_JSON",
            help=f"also write the new models into cdk.json's context (default {CDK_JSON.name})",
        )
        add_target(command)
        command.set_defaults(run=cmd_promote, retire=verb == "retire")


def cmd_promote(args: argparse.Namespace) -> int:
    where = target(args)
    applied = promotion.promote(
        where,
        retire=args.retire,
        dry_run=args.dry_run,
        write_context=args.write_context,
        progress=lambda line: print(line, file=sys.stderr),
    )
    for name, (before, after) in sorted(applied.changes.items()):
        print(f"{name}: {before if before is not None else '(unset)'} -> {after if after is not None else '(unset)'}")
    if applied.dry_run:
        print("dry run: nothing sent", file=sys.stderr)
        return EXIT_OK
    print(f"applied (revision {applied.revision_id})", file=sys.stderr)
    if applied.wrote_context:
        print(f"wrote the models into {applied.wrote_context}", file=sys.stderr)
    if not args.retire:
        stack = f"--stack {args.stack}" if args.stack else "--embedded"
        print(f"re-run earlier results through the new primary: inferctl reprocess --stale {stack}", file=sys.stderr)
    return EXIT_OK
