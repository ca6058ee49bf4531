"""``inferctl``: the operator's tool for the image-inference stack, deployed or embedded.

Commands:
  upload    upload a folder of images under the input prefix, optionally --wait for the results
  results   list results as a table or JSON lines, optionally --download them with annotated images
  dlq       show what sits in the dead-letter queue and why, optionally --redrive it
  reprocess enqueue existing images: --missing, --errors [--code C], --stale, --all (paced, resumable)
  audit     every image's state (ok, error, waiting, dead letter, missing); exit 1 if missing
  thresholds show / set / what-if: the thresholds in force and any drift; a safe live change; a
            proposal tried on the stored results without calling the model
  evaluate  results against ground truth (Ground Truth manifest or a folder per class): precision, recall,
            F1 per label across thresholds, recommended thresholds (--apply), an HTML report
  challenger promote / retire: swap the challenger model and the primary (safely, like thresholds set;
            --dry-run, --write-context), or remove the challenger
  model     the configured model: status (state, capacity, since, cost today), start (waits with
            progress), stop
  cost      cost per 1,000 images of a deployed stack from its CloudWatch metrics, at dated list prices
  smoke     after a deploy: one generated image through the pipeline, timed, then removed; exit 1 with
            the reason (error document, dead letter, last logged error) when its result does not come
  demo      run the whole pipeline on an embedded AWS emulator and a local model, then exit
  serve     keep an embedded stack running (until Ctrl-C) for the commands above
  fault-run a fault-injected end-to-end run (throttling, model not ready, failing writes, corrupt files)

Commands that act on a stack take --stack NAME (a deployed stack, with the usual AWS credentials and
region) or --embedded (the stack `serve` runs). Exit codes: 0 success, 1 images without an outcome,
2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from inferctl.cli import (
    audit,
    challenger,
    cost,
    demo,
    dlq,
    evaluate,
    fault_run,
    model,
    reprocess,
    results,
    serve,
    smoke,
    thresholds,
    upload,
)
from inferctl.cli.common import EXIT_USAGE
from inferctl.stack.errors import ConfigError, TargetError

# One module per command, named as the command (``fault-run``: fault_run.py); each adds itself with ``register``.
COMMANDS = (
    upload,
    results,
    dlq,
    reprocess,
    audit,
    thresholds,
    evaluate,
    challenger,
    model,
    cost,
    smoke,
    demo,
    serve,
    fault_run,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inferctl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except (ConfigError, TargetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code
