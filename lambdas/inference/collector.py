"""The cyclic garbage collector while an execution environment starts.

A cold start makes hundreds of thousands of objects that live as long as the environment: modules, botocore's
service models and endpoint rules, the clients. The collector runs whenever allocations outnumber deallocations by
its threshold, so it scans those objects again and again while they are being made, and finds nothing to free:
78 ms of a 586 ms cold start on the 2-core machine of 2026-12-03 (132 young, 12 middle and 1 full collection, the
handler of ``make bench`` row 1 with one image).

So in an execution environment (``AWS_LAMBDA_RUNTIME_API`` set, as Lambda sets it for every runtime) the collector
is paused from the handler module's first lines (``handler.py``) until the environment is built
(``environment.runtime()``). Then what was built is frozen (``gc.freeze``: moved where the collector no longer scans
it, since it lives until the environment ends) and collection resumes for the invocations. Only the handler pauses
it: a process that imports other parts of the package (the decode helper of ``images/sandbox.py``, which inherits
the function's environment) never builds one, and would never collect again. Outside Lambda (tests, the embedded
stack, the operator tool) nothing changes.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping

_paused = False


def pause(environ: Mapping[str, str] = os.environ) -> bool:
    """Pause collection if this is an execution environment's start and it runs; whether it was paused."""
    global _paused
    if environ.get("AWS_LAMBDA_RUNTIME_API") and gc.isenabled() and not _paused:
        gc.disable()
        _paused = True
    return _paused


def resume() -> None:
    """Freeze what the start made and collect again (nothing when ``pause`` did not pause)."""
    global _paused
    if _paused:
        gc.freeze()
        gc.enable()
        _paused = False
