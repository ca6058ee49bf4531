"""Changes the embedded stack makes to moto, each applied once per process however often a stack starts."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable


def once(install: Callable[[], None]) -> Callable[[], None]:
    """``install`` runs on the first call only (a patch that wrapped itself twice would run twice per request);
    a caller that arrives while it runs waits for it."""
    lock = threading.Lock()
    done = False

    @functools.wraps(install)
    def run_once() -> None:
        nonlocal done
        with lock:
            if not done:
                install()
                done = True

    return run_once
