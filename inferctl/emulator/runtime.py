"""What Lambda gives a handler, and where its output goes: the SQS event shape built from received
messages, a context object, and the function's log stream (a file and the emulator's CloudWatch Logs)."""

from __future__ import annotations

import contextlib
import io
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Lambda's SQS event for messages as ``ReceiveMessage`` returns them (with ``AttributeNames=['All']``)."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


@dataclass
class LambdaContext:
    """The parts of Lambda's context object Powertools and the handler use."""

    function_name: str = "image-inference-local"
    memory_limit_in_mb: int = 1024
    timeout_seconds: float = 60.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


class LambdaLogs(io.TextIOBase):
    """Where the function's stdout goes: a local file and the emulator's CloudWatch Logs, like Lambda."""

    def __init__(
        self, logs_client: Any, log_group: str, path: Path | None, on_lines: Callable[[list[str]], None] | None = None
    ) -> None:
        self._logs = logs_client
        self._on_lines = on_lines
        self._group = log_group
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8", buffering=1) if path else None  # line by line: readers see it now
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        with contextlib.suppress(logs_client.exceptions.ResourceAlreadyExistsException):
            logs_client.create_log_group(logGroupName=log_group)  # emulator state outlives one stack
        logs_client.create_log_stream(logGroupName=log_group, logStreamName=self._stream)

    def write(self, text: str) -> int:
        with self._lock:
            if self._file:
                self._file.write(text)
            self._pending.extend(line for line in text.splitlines() if line.strip())
        return len(text)

    def ship(self) -> None:
        with self._lock:
            lines, self._pending = self._pending, []
        if lines and self._on_lines:
            self._on_lines(lines)
        if lines:
            now = int(time.time() * 1000)
            self._logs.put_log_events(
                logGroupName=self._group,
                logStreamName=self._stream,
                logEvents=[{"timestamp": now, "message": line} for line in lines],
            )

    def close(self) -> None:
        self.ship()
        if self._file:
            self._file.close()
        super().close()
