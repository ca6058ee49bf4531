"""Invocations the way Lambda's Python runtime makes them, in an execution environment (a process) of their own.

Run by ``isolation.ProcessInvoker`` as ``python -P lambda_bootstrap.py HANDLER`` with ``PYTHONPATH`` set to the
function's code (the ``lambdas/`` folder, the asset's root) and the function's environment already in place when
the interpreter starts, as Lambda does: glibc reads ``MALLOC_*`` only then. Standard library only, and nothing of
the operator tool is importable here: the handler gets exactly what it gets on Lambda.

Protocol: the handler's module is imported first (the init phase); then each line on stdin,
``EVENT_FILE RESPONSE_FILE TIMEOUT REQUEST_ID``, is one invocation. ``INVOKE_MARKER`` on stdout starts the parent's
timeout clock; the response (or the error) and this invocation's peak resident memory are written to RESPONSE_FILE as
JSON, then ``DONE_MARKER``. Between invocations the parent freezes the process (SIGSTOP), as Lambda freezes an
environment once its response is sent: threads the handler left running stop where they are and go on at the next
invocation.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

INVOKE_MARKER = "__lambda_invoke_starts__"
DONE_MARKER = "__lambda_invoke_done__"


class Context:
    """What Lambda's context object offers the handler (remaining time counts down from the invoke)."""

    def __init__(self, timeout_seconds: float, request_id: str | None = None) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id or str(uuid.uuid4())
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "isolated"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _peak_kb() -> int:
    """This process's peak resident memory since the invocation began (VmHWM, reset at each invocation; this
    address space's own: getrusage's ru_maxrss survives exec and would report the parent's peak)."""
    with Path("/proc/self/status").open(encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def invoke(handler: Any, event_file: str, response_file: str, timeout: str, request_id: str | None = None) -> None:
    event = json.loads(Path(event_file).read_text(encoding="utf-8"))
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM counts this invocation only
    print(INVOKE_MARKER, flush=True)
    context = Context(float(timeout), request_id)
    outcome: dict[str, Any]
    try:
        outcome = {"response": handler(event, context), "request_id": context.aws_request_id}
    except Exception as exc:  # noqa: BLE001 - a function error, reported the way Lambda reports it
        outcome = {
            "error": {"errorType": type(exc).__name__, "errorMessage": str(exc)},
            "trace": traceback.format_exc(),
            "request_id": context.aws_request_id,
        }
    sys.stdout.flush()
    outcome["max_rss_kb"] = _peak_kb()
    Path(response_file).write_text(json.dumps(outcome), encoding="utf-8")
    print(DONE_MARKER, flush=True)


def main() -> int:
    module_name, function_name = sys.argv[1].rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), function_name)
    for line in sys.stdin:
        if line.strip():
            invoke(handler, *line.split())
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Lambda does not wait for threads the handler left running (a model call abandoned at its deadline) when an
    # environment ends. Neither does this process.
    os._exit(code)
