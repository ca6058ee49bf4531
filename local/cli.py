"""``python -m local``: the demo, an embedded stack to play with, and the operator's tool for any stack.

Commands:
  demo      run the whole pipeline on an embedded AWS emulator and a local model, then exit
  serve     keep an embedded stack running (until Ctrl-C) for the commands below
  upload    upload a folder of images under the input prefix, optionally --wait for the results
  results   list results as a table or JSON lines, optionally --download them with annotated images
  dlq       show what sits in the dead-letter queue and why, optionally --redrive it
  fault-run a fault-injected end-to-end run (throttling, model not ready, failing writes, corrupt files)

The last three work on the embedded stack (--embedded) or on a deployed one (--stack NAME, with the
usual AWS credentials and region). Exit codes: 0 success, 1 images lost or failed to settle in time,
2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lambdas.inference.rules import ConfigError

from . import operations
from .target import DEFAULT_STATE, Target, TargetError, deployed, embedded

EXIT_OK, EXIT_LOST, EXIT_USAGE = 0, 1, 2


def _context(pairs: Sequence[str]) -> dict[str, Any]:
    """``-c key=value`` pairs, as the CDK CLI takes them (values parsed as JSON when they are JSON)."""
    context: dict[str, Any] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ConfigError("-c", f"expected key=value, got {pair!r}")
        try:
            context[key] = json.loads(value)
        except json.JSONDecodeError:
            context[key] = value
    return context


def _add_target(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--stack", metavar="NAME", help="a deployed stack (outputs read from CloudFormation)")
    group.add_argument(
        "--embedded",
        metavar="STATE",
        nargs="?",
        const=str(DEFAULT_STATE),
        help=f"the embedded stack started by `serve` (default state file: {DEFAULT_STATE})",
    )


def _target(args: argparse.Namespace) -> Target:
    return deployed(args.stack) if args.stack else embedded(Path(args.embedded))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the pipeline end to end on an embedded stack")
    demo.add_argument("--images", type=Path, help="a folder of your own images (default: generated samples)")
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help="where results go (default: out/demo)")
    demo.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="CDK context override")
    demo.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for every outcome")

    faults = commands.add_parser("fault-run", help="a fault-injected end-to-end run: nothing lost, nothing doubled")
    faults.add_argument("--images", type=int, default=300)
    faults.add_argument("--throttle-rate", type=float, default=0.25)
    faults.add_argument("--corrupt-rate", type=float, default=0.05)
    faults.add_argument("--write-fail-rate", type=float, default=0.05)
    faults.add_argument("--seed", type=int, default=7)
    faults.add_argument("--backend", choices=("sagemaker", "rekognition"), default="sagemaker")
    faults.add_argument("--out", type=Path, default=Path("out/fault-run"))
    faults.add_argument("--timeout", type=float, default=900.0)

    serve = commands.add_parser("serve", help="run an embedded stack until Ctrl-C")
    serve.add_argument("--state", type=Path, default=DEFAULT_STATE, help="where to write connection details")
    serve.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="CDK context override")

    upload = commands.add_parser("upload", help="upload a folder under the input prefix")
    upload.add_argument("folder", type=Path)
    upload.add_argument("--wait", action="store_true", help="wait for every image's outcome, with progress")
    upload.add_argument("--timeout", type=float, default=300.0)
    _add_target(upload)

    results = commands.add_parser("results", help="list results (table or JSON lines), optionally download them")
    results.add_argument("--prefix", help="key prefix to list (default: the input prefix)")
    results.add_argument("--format", choices=("table", "jsonl"), default="table")
    results.add_argument("--download", type=Path, metavar="DIR", help="write JSON and annotated images here")
    _add_target(results)

    dlq = commands.add_parser("dlq", help="show the dead-letter queue and why; optionally redrive it")
    dlq.add_argument("--redrive", action="store_true", help="move every message back to the source queue")
    dlq.add_argument("--format", choices=("table", "jsonl"), default="table")
    _add_target(dlq)
    return parser


def labels_text(document: dict[str, Any] | None) -> str:
    if not document:
        return ""
    if document.get("status") == "error":
        return f"{document['error']['code']}: {document['error']['message']}"[:70]
    return ", ".join(f"{label['name']} {label['confidence']:.0f}%" for label in document.get("labels", [])) or "-"


def table(rows: Sequence[Sequence[Any]], headers: tuple[str, ...]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    widths = [min(width, 60) for width in widths]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(cell)[:w].ljust(w) for cell, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def cmd_upload(args: argparse.Namespace) -> int:
    target = _target(args)
    files, ignored = operations.image_files(args.folder)
    for path in ignored:
        print(f"skipped {path}: its suffix does not trigger the pipeline", file=sys.stderr)
    if not files:
        print(f"no images under {args.folder}", file=sys.stderr)
        return EXIT_USAGE
    items = [(path.relative_to(args.folder).as_posix(), path.read_bytes()) for path in files]
    uploads = operations.upload_many(target, items)
    print(f"uploaded {len(uploads)} images to s3://{target.bucket}/{target.input_prefix}", file=sys.stderr)
    if not args.wait:
        return EXIT_OK
    found = operations.wait_for(target, [u.key for u in uploads], args.timeout)
    return report(found)


def report(found: dict[str, Any]) -> int:
    rows = [(key, labels_text(o.document), o.state) for key, o in found.items()]
    print(table(rows, ("image", "labels (accepted) / error", "outcome")))
    counts: dict[str, int] = {}
    for outcome in found.values():
        counts[outcome.state] = counts.get(outcome.state, 0) + 1
    summary = ", ".join(f"{state}={count}" for state, count in sorted(counts.items()))
    lost = counts.get("pending", 0)
    print(f"\n{len(found)} images: {summary}" + (f" -- {lost} without an outcome" if lost else ""))
    return EXIT_LOST if lost else EXIT_OK


def cmd_results(args: argparse.Namespace) -> int:
    target = _target(args)
    documents = operations.list_results(target, args.prefix)
    if args.format == "jsonl":
        for document in documents:
            print(json.dumps(document, ensure_ascii=False))
    else:
        rows = [(d["source"]["key"], d.get("status", "?"), labels_text(d)) for d in documents]
        print(table(rows, ("image", "status", "labels / error")))
    if args.download:
        written = operations.download(target, documents, args.download)
        print(f"wrote {len(written)} files under {args.download}", file=sys.stderr)
    return EXIT_OK


def cmd_dlq(args: argparse.Namespace) -> int:
    target = _target(args)
    reports = operations.inspect_dlq(target)
    if args.format == "jsonl":
        for item in reports:
            line = {
                "message_id": item.letter.message_id,
                "keys": list(item.letter.keys),
                "receive_count": item.letter.receive_count,
                "last_error": item.last_error,
            }
            print(json.dumps(line, ensure_ascii=False))
    else:
        rows = [
            (", ".join(r.letter.keys) or "(not an S3 event)", str(r.letter.receive_count), r.last_error or "unknown")
            for r in reports
        ]
        print(table(rows, ("image", "receives", "last error")))
        print(f"\n{len(reports)} messages in the dead-letter queue", file=sys.stderr)
    if args.redrive:
        moved = operations.redrive(target)
        print(f"redrove {moved} messages to {target.queue_url}", file=sys.stderr)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from .stack import demo_config, embedded_stack, write_state

    config = demo_config(_context(args.context))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # Ctrl-C or a service manager: stop cleanly either way
        signal.signal(signum, lambda *_: stop.set())
    with embedded_stack(config, log_path=args.state.parent / "lambda.log", capture_stdout=True) as stack:
        write_state(stack, args.state)
        print(f"embedded stack up at {stack.emulator.endpoint_url}; details in {args.state}", file=sys.stderr)
        print("try: python -m local upload FOLDER --embedded --wait   (Ctrl-C stops)", file=sys.stderr)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            args.state.unlink(missing_ok=True)
    return EXIT_OK


def cmd_fault_run(args: argparse.Namespace) -> int:
    from .faults import FaultPlan, print_report, run

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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from .demo import run_demo

            return run_demo(args.images, args.out, _context(args.context), args.timeout)
        if args.command == "fault-run":
            return cmd_fault_run(args)
        handlers = {"serve": cmd_serve, "upload": cmd_upload, "results": cmd_results, "dlq": cmd_dlq}
        return handlers[args.command](args)
    except (ConfigError, TargetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
