"""``review``: a person reviews a sample of production images in the browser; a Ground Truth manifest comes out."""

from __future__ import annotations

import argparse
import random
import sys
import webbrowser
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inferctl.cli.common import EXIT_OK, add_engine, add_target, count, source, target
from inferctl.evaluation import manifests
from inferctl.stack import configuration, review_session

DEFAULT_SESSION = Path("out/review/session.json")


def register(commands: Any) -> None:
    review = commands.add_parser(
        "review", help="review a sample of production images in the browser; write a Ground Truth manifest"
    )
    review.add_argument("--budget", type=count, default=50, metavar="N", help="images to review (default 50)")
    review.add_argument("--seed", type=int, help="the sample's seed (default: random, recorded in the session)")
    review.add_argument(
        "--session",
        type=Path,
        default=DEFAULT_SESSION,
        help=f"the session file, resumed when it exists ({DEFAULT_SESSION})",
    )
    review.add_argument("--manifest", type=Path, help="where the manifest goes (default: beside the session)")
    review.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    review.add_argument("--open", action="store_true", help="open the page in the default browser")
    review.add_argument(
        "--manifest-for",
        choices=manifests.TARGETS,
        default=manifests.GROUND_TRUTH,
        help="what reads the manifest: SageMaker Ground Truth and `evaluate` (default), or Rekognition Custom Labels "
        "(its limits applied: PNG and JPEG only, boxes sized as it trains them; what is left out is said)",
    )
    review.add_argument(
        "--upload",
        action="store_true",
        help="also put the manifest in the bucket under reviews/ (outside the prefix), under a new dated key each time",
    )
    review.add_argument("--prefix", help="key prefix of the results (default: the input prefix)")
    add_engine(review)
    add_target(review)
    review.set_defaults(run=cmd_review)


def cmd_review(args: argparse.Namespace) -> int:
    stack = target(args)
    thresholds = configuration.live_settings(stack).thresholds
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    session, resumed = review_session.open_session(
        stack,
        thresholds,
        args.session,
        budget=args.budget,
        seed=seed,
        prefix=args.prefix,
        documents=lambda: source(args, stack, args.prefix).documents(args.prefix),
    )
    manifest = args.manifest or args.session.with_name("reviewed.manifest")
    from inferctl.stack.review_server import ReviewServer  # its HTTP server, only when one is served

    server = ReviewServer(stack, session, port=args.port, manifest=manifest, manifest_target=args.manifest_for)
    done = session.progress()
    how = "resumed" if resumed else f"new sample of {done['total']} (seed {session.sample['seed']})"
    print(f"review session {args.session}: {how}; {done['reviewed']} of {done['total']} reviewed", file=sys.stderr)
    with server.running():
        # flushed at once: piped into `tee` or a log, the URL must show while the command runs, not at its end
        print(f"open {server.url}  (127.0.0.1 only; the token is the key: do not share the URL)", flush=True)
        if args.open:
            webbrowser.open(server.url)
        try:
            server.finished.wait()
        except KeyboardInterrupt:
            print("\nstopped; every review so far is saved: run the same command to resume", file=sys.stderr)
            return EXIT_OK
    for warning in server.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"manifest: {manifest} ({session.progress()['reviewed']} images, for {args.manifest_for})")
    if args.upload:
        key = review_session.upload_key(manifest, datetime.now(UTC))
        stack.client("s3").upload_file(str(manifest), stack.bucket, key)
        print(f"uploaded: s3://{stack.bucket}/{key} (the latest; earlier rounds stay under reviews/)")
    print(f"next: inferctl evaluate --reviewed {manifest} {'--stack ' + args.stack if args.stack else '--embedded'}")
    return EXIT_OK
