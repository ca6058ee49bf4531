"""``reprocess``: enqueue images that are already in the bucket (missing, errors, stale, all), paced and
resumable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from inferctl.cli.common import EXIT_LOST, EXIT_OK, add_engine, add_target, positive, source, target
from inferctl.stack import audit, configuration, questions, reprocess, resend
from inferctl.stack.errors import UsageError
from inferctl.stack.tables import Source
from inferctl.stack.target import Target


def register(commands: Any) -> None:
    parser = commands.add_parser("reprocess", help="enqueue existing images (missing, errors, stale, all)")
    choice = parser.add_mutually_exclusive_group(required=True)
    choice.add_argument("--missing", action="store_true", help="images with no outcome document")
    choice.add_argument("--errors", action="store_true", help="images with an error document")
    choice.add_argument("--stale", action="store_true", help="results of another model, schema or thresholds")
    choice.add_argument("--all", action="store_true", help="every image (a forced re-run)")
    parser.add_argument("--code", action="append", default=[], help="with --errors: only this error code")
    parser.add_argument("--prefix", help="a sub-prefix of the input prefix (default: all of it)")
    parser.add_argument("--dry-run", action="store_true", help="count what would be enqueued, send nothing")
    parser.add_argument("--rate", type=positive, default=10.0, help="messages per second (the model's pace)")
    parser.add_argument(
        "--state", type=Path, default=Path("out/reprocess.json"), help="where progress is kept (for --resume)"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run recorded in --state")
    add_engine(parser)
    add_target(parser)
    parser.set_defaults(run=cmd_reprocess)


def cmd_reprocess(args: argparse.Namespace) -> int:
    if args.code and not args.errors:
        raise UsageError(
            "--code picks among error documents: use it with --errors (inferctl reprocess --errors --code C)"
        )
    if args.resume and not args.state.exists():
        raise UsageError(f"--resume: no run recorded in {args.state}; start one without --resume (or name its --state)")
    if args.resume and args.dry_run:
        raise UsageError("--resume continues a run that sends; a --dry-run sends nothing: use one or the other")
    selection = reprocess.Selection(
        missing=args.missing, errors=args.errors, codes=frozenset(args.code), stale=args.stale, all=args.all
    )
    if args.state:
        args.state.parent.mkdir(parents=True, exist_ok=True)

    def show(progress: reprocess.Progress) -> None:
        sent = "nothing sent (dry run)" if args.dry_run else f"enqueued {progress.enqueued}"
        print(f"listed {progress.listed}, selected {progress.selected}, {sent}", file=sys.stderr)

    stack = target(args)
    chosen = source(args, stack, args.prefix) if not args.resume else None
    if chosen is not None and chosen.table is not None:
        return _from_table(args, stack, chosen, selection)
    report = reprocess.reprocess(
        stack,
        selection,
        prefix=args.prefix,
        dry_run=args.dry_run,
        per_second=args.rate,
        state=None if args.dry_run else args.state,
        resume=args.resume,
        on_progress=show,
    )
    reasons = ", ".join(f"{reason}={count}" for reason, count in sorted(report.by_reason.items())) or "none"
    # A dry run sends nothing; what it would send is every selected image.
    done = f"would enqueue {report.selected}" if args.dry_run else f"enqueued {report.enqueued}"
    print(f"{report.listed} images listed, {report.selected} selected ({reasons}); {done}")
    if report.skipped:
        left = ", ".join(f"{why}={count}" for why, count in sorted(report.skipped.items()))
        print(f"left alone: {left} (dead letters return with `inferctl dlq --redrive`; waiting ones are on their way)")
    if report.interrupted:
        print(f"interrupted: resume with --resume --state {args.state}", file=sys.stderr)
        return EXIT_LOST
    return EXIT_OK


def _from_table(args: argparse.Namespace, stack: Target, chosen: Source, selection: reprocess.Selection) -> int:
    """The images to send, from the table joined with the inventory; sent by the stack's state machine (Athena) or
    from here (the embedded stack's DuckDB)."""
    settings = configuration.live_settings(stack)
    images = chosen.images(settings.image_suffixes, args.prefix)
    now = reprocess.current(stack) if selection.stale else None
    settled = audit.settled_now(stack) if selection.missing else audit.Settled()
    assert chosen.table is not None
    picked = questions.selected(chosen.table, images, selection, now, settled)
    run = resend.run_id(selection)
    if chosen.engine == "athena":
        sent = resend.by_state_machine(stack, picked, run, dry_run=args.dry_run)
    else:
        sent = resend.from_here(stack, picked, run, dry_run=args.dry_run, per_second=args.rate)
    report = sent.report
    reasons = ", ".join(f"{reason}={count}" for reason, count in sorted(report.by_reason.items())) or "none"
    done = f"would enqueue {report.selected}" if args.dry_run else f"enqueued {report.enqueued}"
    print(f"{report.selected} images selected from the outcome table ({reasons}); {done}")
    if sent.execution_arn:
        print(f"the state machine sends them, paced to the model: {sent.execution_arn} (list: {sent.list_uri})")
    return EXIT_OK
