"""``env``: the shell variables that point the AWS CLI (and any SDK) at the embedded stack.

eval "$(inferctl env --embedded)"
aws s3 ls "s3://$BUCKET/test_images/"
eval "$(inferctl env --unset)"      # back to your AWS account
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from inferctl.cli.common import EXIT_OK
from inferctl.stack.target import DEFAULT_STATE, environment, read_state


def register(commands: Any) -> None:
    env = commands.add_parser(
        "env",
        help="print `export` lines that point the AWS CLI at the embedded stack (for eval)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env.add_argument(
        "--embedded",
        metavar="STATE",
        type=Path,
        nargs="?",
        const=DEFAULT_STATE,
        default=DEFAULT_STATE,
        help=f"the embedded stack's state file (default {DEFAULT_STATE})",
    )
    env.add_argument("--unset", action="store_true", help="print the `unset` line that undoes the exports")
    env.set_defaults(run=cmd_env)


# What ``exports`` sets (the per-service endpoints and credentials as ``environment`` writes them)
SET = (
    "AWS_ENDPOINT_URL",
    *(f"AWS_ENDPOINT_URL_{name}" for name in ("LAMBDA", "REKOGNITION", "SAGEMAKER", "SAGEMAKER_RUNTIME")),
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "BUCKET",
    "INPUT_PREFIX",
    "QUEUE_URL",
    "DLQ_URL",
    "FUNCTION_NAME",
)


def cmd_env(args: argparse.Namespace) -> int:
    if args.unset:
        print(
            f"# undoes `inferctl env --embedded` (your own AWS_REGION and credentials too, if it replaced them)\n"
            f"unset {' '.join(SET)}"
        )
        return EXIT_OK
    print(exports(read_state(args.embedded)))
    return EXIT_OK


def exports(state: dict[str, Any]) -> str:
    """``export NAME=value`` lines: the AWS variables, then the stack's names (BUCKET, QUEUE_URL...)."""
    names = {
        "BUCKET": state["BucketName"],
        "INPUT_PREFIX": state["InputPrefix"],
        "QUEUE_URL": state["QueueUrl"],
        "DLQ_URL": state["DeadLetterQueueUrl"],
        "FUNCTION_NAME": state.get("FunctionName", ""),
    }
    lines = [f"export {name}={shlex.quote(value)}" for name, value in {**environment(state), **names}.items()]
    return "\n".join(["# the embedded stack's endpoints, dummy credentials and names (inferctl serve)", *lines])
