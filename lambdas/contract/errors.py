"""The project's error kinds. Adapters translate service errors into these; the pipeline decides by kind.

- ``PermanentError``: retrying cannot help (bad image, object gone, the backend rejects the image).
  The pipeline writes an error document at the result key and acknowledges the message.
- ``TransientError``: might pass later (throttling, model not running, 5xx, timeouts, storage faults,
  configuration an operator must fix). The message is reported as a batch item failure, retried, and
  after ``maxReceiveCount`` receives moved to the dead-letter queue, from where it can be redriven.
"""

from __future__ import annotations


class ProcessingError(Exception):
    """A failure with a stable, machine-readable ``code`` and a human ``message``."""

    retryable = False

    def __init__(self, code: str, message: str, *, request_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


class PermanentError(ProcessingError):
    """Retrying cannot fix it: record an error document and acknowledge."""


class TransientError(ProcessingError):
    """Might pass later: report the message as failed so SQS redelivers it (and eventually dead-letters it)."""

    retryable = True


# Stable codes. Documented in docs/results.md ("Error codes"); do not rename, operators alarm on them.
IMAGE_EMPTY = "IMAGE_EMPTY"
IMAGE_UNREADABLE = "IMAGE_UNREADABLE"
IMAGE_TOO_SMALL = "IMAGE_TOO_SMALL"
IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
IMAGE_ASPECT_RATIO = "IMAGE_ASPECT_RATIO"
OBJECT_NOT_FOUND = "OBJECT_NOT_FOUND"
BACKEND_REJECTED_IMAGE = "BACKEND_REJECTED_IMAGE"
BACKEND_THROTTLED = "BACKEND_THROTTLED"
MODEL_NOT_READY = "MODEL_NOT_READY"
BACKEND_UNAVAILABLE = "BACKEND_UNAVAILABLE"
BACKEND_TIMEOUT = "BACKEND_TIMEOUT"
BACKEND_MISCONFIGURED = "BACKEND_MISCONFIGURED"
RESPONSE_FORMAT_UNKNOWN = "RESPONSE_FORMAT_UNKNOWN"
MODEL_OUTPUT_INVALID = "MODEL_OUTPUT_INVALID"
MODEL_OUTPUT_TOO_LARGE = "MODEL_OUTPUT_TOO_LARGE"  # the answer is larger than MODEL_RESPONSE_MAX_BYTES
IMAGE_UNSUPPORTED = "IMAGE_UNSUPPORTED"
STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"
RESULT_WRITE_FAILED = "RESULT_WRITE_FAILED"
OUT_OF_TIME = "OUT_OF_TIME"
KEY_TOO_LONG = "KEY_TOO_LONG"
RESULT_KEY_TAKEN = "RESULT_KEY_TAKEN"  # <image>.json exists and is not ours: never replaced
UNEXPECTED_ERROR = "UNEXPECTED_ERROR"  # a bug: logged with its traceback, the message redelivered
