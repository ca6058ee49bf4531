"""A Lambda context for tests that invoke the handler directly: a timeout that counts down."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Context:
    function_name: str = "image-inference-test"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:image-inference-test"
    aws_request_id: str = "req-1"
    timeout_seconds: float = 60.0
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))
