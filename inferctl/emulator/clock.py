"""An emulated clock for the embedded stack: days pass in seconds for SQS (message retention, visibility, delays)
and for the model controller, so that what happens to images waiting weeks for a stopped model can be shown.

moto's SQS reads the time through ``moto.sqs.models.unix_time`` and ``unix_time_millis``; while the clock is
installed they add the clock's offset. Everything else (S3, the function, the trigger's polling) keeps real time.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any


class EmulatedClock:
    """Real time plus an offset that only grows (``advance``)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("an emulated clock only moves forward")
        with self._lock:
            self._offset += seconds

    def now(self) -> float:
        """Epoch seconds, emulated."""
        return time.time() + self.offset

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """moto's SQS keeps this clock while the block runs."""
        from moto.sqs import models

        module: Any = models
        real_seconds, real_millis = module.unix_time, module.unix_time_millis

        def seconds(dt: Any = None) -> float:
            return float(real_seconds(dt)) + (self.offset if dt is None else 0.0)

        def millis(dt: Any = None) -> float:
            return float(real_millis(dt)) + (self.offset * 1000 if dt is None else 0.0)

        module.unix_time, module.unix_time_millis = seconds, millis
        try:
            yield
        finally:
            module.unix_time, module.unix_time_millis = real_seconds, real_millis
