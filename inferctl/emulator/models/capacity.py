"""A model with a capacity, like a Rekognition model with its inference units: at most so many calls per
second (a token bucket with a one-second burst); the calls beyond are throttled as the service throttles."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from inferctl.emulator.models.base import LocalModel, ModelFault, Prediction


class LimitedModel:
    def __init__(self, model: LocalModel, per_second: float) -> None:
        self.model = model
        self.per_second = per_second
        self._tokens = per_second
        self._last = time.monotonic()
        self._lock = threading.Lock()
        self.calls = 0
        self.throttled = 0

    def __call__(self, body: bytes, content_type: str) -> Sequence[Prediction] | Any:
        with self._lock:
            self.calls += 1
            now = time.monotonic()
            self._tokens = min(self.per_second, self._tokens + (now - self._last) * self.per_second)
            self._last = now
            if self._tokens < 1.0:
                self.throttled += 1
                raise ModelFault("throttled", f"Rate exceeded: this model takes {self.per_second:g} calls per second")
            self._tokens -= 1.0
        return self.model(body, content_type)

    @property
    def throttled_ratio(self) -> float:
        return self.throttled / self.calls if self.calls else 0.0
