"""Keeping to the model's capacity, and stepping back when it is busy.

- ``RateLimiter``: a token bucket shared by an execution environment's threads. The stack gives each
  environment its share of the model's calls per second (``MODEL_CALLS_PER_SECOND`` = capacity divided by
  the trigger's maximum concurrency), and every HTTP attempt to the model, retries included, takes a token.
- ``backoff_seconds``: a record that failed because the model throttled, was not ready or failed comes back
  after a delay that grows with its receive count (``queue.SourceQueue.delay``), instead of after the queue's
  full visibility timeout all at once with its neighbours.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

BACKOFF_BASE_SECONDS = 30
BACKOFF_JITTER = 0.2


class RateLimiter:
    def __init__(
        self,
        per_second: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_second = per_second
        self.capacity = burst if burst is not None else max(1.0, per_second)
        self._tokens = self.capacity
        self._clock, self._sleep = clock, sleep
        self._last = clock()
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    def acquire(self) -> None:
        """Take a token, waiting for one when the bucket is empty."""
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.per_second)
                self._last = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                wait = (1.0 - self._tokens) / self.per_second
                self.waited_seconds += wait
            self._sleep(wait)

    def attach(self, client: Any) -> None:
        """Take a token before every HTTP attempt of a boto3 client (botocore's ``before-send`` event)."""
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is not None:
            events.register("before-send", self._before_send)

    def _before_send(self, **_: Any) -> None:
        self.acquire()


def backoff_seconds(receive_count: int, cap: int, rng: random.Random | None = None) -> int:
    """30 s, 60 s, 120 s... by receive count, at most ``cap``, with 20% jitter either way."""
    base = min(cap, BACKOFF_BASE_SECONDS * 2 ** max(0, receive_count - 1))
    jitter = (rng or random).uniform(-BACKOFF_JITTER, BACKOFF_JITTER)
    return int(min(cap, max(1, base * (1 + jitter))))
