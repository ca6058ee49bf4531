"""Time: how long the current invocation may still work, and a bound on a whole model call.

Lambda kills an invocation at its timeout, and every record of the batch that has not been reported comes
back: the finished ones too, which then have a result *and* another receive, and the slow one's neighbours
end in the dead-letter queue with it. So:

- The handler sets the invocation's deadline (its end minus a safety margin for the last write) once per
  invocation (``invocation``); every record runs in a copy of that context and sees it.
- ``bounded_call`` runs a model call on a worker thread and waits at most the call's own budget or what is
  left of the invocation, whichever is shorter: botocore's read timeout bounds each socket read, not the call,
  and a model that trickles its answer a byte at a time never trips it. The caller gets BACKEND_TIMEOUT; the
  abandoned call's answer, if it ever comes, is dropped (its thread writes nothing).
- ``check`` refuses to start work (a record, a model attempt) that cannot finish in time: OUT_OF_TIME, the
  record's own message returned for redelivery.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from lambdas.contract import errors
from lambdas.contract.errors import TransientError

T = TypeVar("T")

# The latest moment (time.monotonic) work of this invocation may still start or wait for, and how long the
# invocation had for its work when it began.
_END: contextvars.ContextVar[float | None] = contextvars.ContextVar("invocation_end", default=None)
_LENGTH: contextvars.ContextVar[float | None] = contextvars.ContextVar("invocation_length", default=None)
# A model attempt is not started with less than this left before the deadline (which already keeps the
# invocation's safety margin for the write): it could not answer in time anyway.
MIN_ATTEMPT_SECONDS = 0.25
# Model calls run here so that the record's thread can stop waiting. Abandoned calls keep a worker until their
# socket gives up; the pool is sized for a batch's records plus that many stragglers.
MAX_CALL_WORKERS = 64


@contextlib.contextmanager
def invocation(seconds: float | None) -> Iterator[None]:
    """Work started inside the block must end within ``seconds`` (None: no bound, outside Lambda)."""
    token = _END.set(None if seconds is None else time.monotonic() + seconds)
    length = _LENGTH.set(seconds)
    try:
        yield
    finally:
        _LENGTH.reset(length)
        _END.reset(token)


def remaining() -> float | None:
    """Seconds left for work of the current invocation; None when there is no bound."""
    end = _END.get()
    return None if end is None else end - time.monotonic()


def share(fraction: float, default: float) -> tuple[float, bool]:
    """Seconds a piece of work may take when it may use ``fraction`` of an invocation (``default`` outside one),
    and whether that cap, rather than what is left of this invocation, is what bounds it. Work that needs more
    than its cap can never finish; work cut short by the invocation's end may finish in a fresh one."""
    left, length = remaining(), _LENGTH.get()
    if left is None or length is None:
        return default, True
    cap = length * fraction
    return (cap, True) if cap <= left else (max(0.0, left), False)


def check(what: str, needed: float = 0.0) -> None:
    """Raise OUT_OF_TIME when less than ``needed`` seconds are left for ``what``."""
    left = remaining()
    if left is not None and left <= needed:
        raise TransientError(errors.OUT_OF_TIME, f"not enough time left in this invocation for {what}")


class BoundedCalls:
    """Runs calls on worker threads and waits at most ``timeout_seconds`` (and never past the invocation's
    deadline) for each."""

    def __init__(self, timeout_seconds: float, name: str = "model-call") -> None:
        self.timeout_seconds = timeout_seconds
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=MAX_CALL_WORKERS, thread_name_prefix=self._name)
            return self._executor

    def run(self, call: Callable[[], T], service: str) -> T:
        """``call()``'s result; BACKEND_TIMEOUT when it does not finish in time, OUT_OF_TIME when it cannot
        start. Exceptions raised by ``call`` are raised here."""
        budget = self.timeout_seconds
        left = remaining()
        if left is not None:
            check(f"a {service} call", MIN_ATTEMPT_SECONDS)
            budget = min(budget, left)
        future = self._pool().submit(contextvars.copy_context().run, call)
        try:
            return future.result(timeout=budget)
        except FutureTimeout:
            future.cancel()
            raise TransientError(
                errors.BACKEND_TIMEOUT,
                f"{service} gave no complete answer within {budget:.1f} s (the whole call, all attempts)",
            ) from None


def before_attempt(**_: object) -> None:
    """botocore ``before-send`` hook: no attempt starts that could not answer before the deadline."""
    check("another model attempt", MIN_ATTEMPT_SECONDS)
