"""``query``: SQL over the outcome table (one row per outcome document, and ``current_outcomes``: the one S3 holds
now per image), in Athena for a deployed stack, in DuckDB for the embedded one. Written in Athena's dialect."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from inferctl.cli.common import EXIT_OK, add_target, target
from inferctl.console import table
from inferctl.stack import engines, tables
from inferctl.stack.errors import UsageError
from inferctl.stack.target import DEFAULT_STATE, TargetError

EXAMPLES = """columns: inferctl query --columns --embedded; ready-made: --named NAME (--list-named)
examples:
  inferctl query --embedded "SELECT status, count(*) FROM current_outcomes GROUP BY status"
  inferctl query --stack ImageInference --named error-codes --format csv
  inferctl query --stack ImageInference "SELECT key FROM current_outcomes CROSS JOIN UNNEST(labels) AS l (name,
    confidence, accepted, threshold, box) WHERE l.name = 'bee' AND l.accepted AND l.confidence > 80
    AND day >= '2026-11-24'"
"""


def register(commands: Any) -> None:
    query = commands.add_parser(
        "query",
        help="SQL over every outcome (Athena on a deployed stack, DuckDB on the embedded one)",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = query.add_mutually_exclusive_group()
    what.add_argument("sql", nargs="?", metavar="SQL", help="a SELECT in Athena's dialect (- reads it from stdin)")
    what.add_argument("--named", metavar="NAME", help="a ready-made query (--list-named shows them)")
    what.add_argument("--list-named", action="store_true", help="the ready-made queries, and what each answers")
    what.add_argument("--columns", action="store_true", help="the table's columns, and what each holds")
    query.add_argument("--format", choices=("table", "json", "csv"), default="table", help="table (default), JSON, CSV")
    query.add_argument("--output", type=Path, metavar="FILE", help="write the answer here instead of printing it")
    add_target(query)
    query.set_defaults(run=cmd_query)


def cmd_query(args: argparse.Namespace) -> int:
    if args.sql is None and args.embedded and not str(args.embedded).endswith(".json"):
        # `query --embedded "SELECT ..."`: the SQL, not a state file (--embedded takes one optionally)
        args.sql, args.embedded = args.embedded, str(DEFAULT_STATE)
    if not (args.sql or args.named or args.list_named or args.columns):
        raise UsageError("nothing to ask: give a SELECT (or - to read it from stdin), --named NAME or --list-named")
    if args.list_named:
        rows = [(query.name, query.description) for query in engines.named_queries()]
        print(table(rows, ("name", "answers"), max_width=90))
        return EXIT_OK
    if args.columns:
        print(table(engines.columns(), ("column", "type", "holds"), max_width=80))
        return EXIT_OK
    text = _sql(args)
    engine = _engine(args)
    answer = engine.query(text)
    values = [[engines.plain(value) for value in row] for row in answer.rows]
    out = args.output.open("w", encoding="utf-8", newline="") if args.output else sys.stdout
    try:
        if args.format == "json":
            json.dump(
                [dict(zip(answer.columns, row, strict=True)) for row in values], out, indent=2, ensure_ascii=False
            )
            out.write("\n")
        elif args.format == "csv":
            writer = csv.writer(out)
            writer.writerow(answer.columns)
            writer.writerows(values)
        else:
            out.write(table([["" if v is None else v for v in row] for row in values], answer.columns) + "\n")
    finally:
        if args.output:
            out.close()
    for note in answer.notes:
        print(note, file=sys.stderr)
    print(answer.summary(), file=sys.stderr)
    return EXIT_OK


def _sql(args: argparse.Namespace) -> str:
    if args.named:
        try:
            return engines.named_query(args.named)
        except KeyError:
            names = ", ".join(query.name for query in engines.named_queries())
            raise UsageError(f"--named {args.named!r}: no such query; the ready-made ones are {names}") from None
    text = sys.stdin.read() if args.sql == "-" else str(args.sql)
    if not text.strip():
        raise UsageError("no SQL given: pass a SELECT (or - to read it from stdin), or --named NAME")
    return text


def _engine(args: argparse.Namespace) -> engines.LocalTable | engines.AthenaTable:
    """The stack's table: Athena for ``--stack``; for ``--embedded``, the running stack's rows (synced first), or
    what the last run left when none is running."""
    try:
        stack = target(args)
    except TargetError:
        if not args.embedded:
            raise
        local = engines.LocalTable(Path(args.embedded).parent / tables.DEFAULT_TABLE_FOLDER.name)
        if not local.files():
            raise UsageError(
                f"no embedded stack is running ({args.embedded} not found) and no rows are left from one in "
                f"{local.folder}: run `make demo`, or start one with `inferctl serve`"
            ) from None
        print(f"the embedded stack is not running: the rows its last run left in {local.folder}", file=sys.stderr)
        return local
    chosen = tables.open_source(stack, "athena" if args.stack else "duckdb", progress=_say)
    assert chosen.table is not None
    return chosen.table


def _say(text: str) -> None:
    print(text, file=sys.stderr)
