"""Which CPUs the execution environment's threads run on.

A batch's records run on threads that share one interpreter lock, and hand it to each other at every blocking
call (a log line's write, a socket read). Lambda runs each execution environment in a Firecracker microVM that
shows 2 vCPUs from 128 MB to 3,008 MB, while the CPU time it grants grows with memory: one vCPU-second per second
at 1,769 MB. Up to there a second vCPU adds no CPU time, only hand-overs of the lock to a thread on the other
vCPU, which must first be woken from idle: on this project's 2-vCPU Firecracker machine, about a third of the
handler's overhead per image (``make bench`` row 2; docs/decisions.md, 2026-12-03).

So an execution environment with at most one vCPU's worth of CPU time keeps its threads on the CPU it started on;
above that it keeps every CPU (Pillow's decoders and zlib run without the lock and can use them). Outside Lambda
(tests, the embedded stack, a developer's shell) nothing is changed; the Lambda-faithful runner sets the variable as
Lambda does, and its execution environments are placed as Lambda's would be.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ONE_VCPU_MB = 1769  # Lambda's documented memory size for one vCPU-second per second


def one_cpu(environ: Mapping[str, str], allowed: set[int], current: int | None) -> int | None:
    """The CPU to keep the process on, or None to leave it where it may run."""
    if not environ.get("AWS_LAMBDA_RUNTIME_API"):  # set by Lambda for every runtime: not an execution environment
        return None
    try:
        memory_mb = int(environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", ""))
    except ValueError:
        return None
    if memory_mb > ONE_VCPU_MB or len(allowed) < 2:
        return None
    return current if current in allowed else min(allowed)


def keep_on_one_cpu(environ: Mapping[str, str] = os.environ) -> int | None:
    """Apply ``one_cpu`` to this process (threads started later inherit it); the CPU chosen, or None."""
    if not hasattr(os, "sched_setaffinity"):  # not Linux
        return None
    allowed = os.sched_getaffinity(0)
    cpu = one_cpu(environ, allowed, _current_cpu())
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    return cpu


def _current_cpu() -> int | None:
    """The CPU this thread last ran on (``processor`` in /proc's stat: field 39, the 37th after the command)."""
    try:
        return int(Path("/proc/thread-self/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[36])
    except (OSError, ValueError, IndexError):
        return None
