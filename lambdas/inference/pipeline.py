"""What happens to one SQS message: parse the S3 notification, and for each image run the model, apply the
thresholds and write the result (or an error document). No boto3 here: storage and backend are passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from . import errors, events, results
from .backends.base import InferenceBackend
from .errors import PermanentError, ProcessingError, TransientError
from .events import MalformedMessage, ObjectCreated, S3TestEvent
from .images import MemoryBudget
from .model import ObjectRef
from .thresholds import Thresholds

MAX_KEY_BYTES = 1024  # S3's limit for an object key, in UTF-8 bytes


class Storage(Protocol):
    def read(self, ref: ObjectRef) -> bytes: ...
    def read_head(self, ref: ObjectRef, length: int) -> bytes: ...
    def read_json(self, bucket: str, key: str) -> dict[str, Any] | None: ...
    def write_json(self, bucket: str, key: str, document: dict[str, Any]) -> None: ...


class Telemetry(Protocol):
    """Where counts and latencies go (Powertools Metrics in the Lambda, a list in tests)."""

    def outcome(self, status: str, code: str | None = None) -> None: ...
    def detection(self, labels_found: int, latency_ms: float) -> None: ...


class LogSink(Protocol):
    def info(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
    def error(self, msg: str, *args: Any, **kwargs: Any) -> None: ...


@dataclass(frozen=True)
class Outcome:
    """How one object (or a message without objects) ended."""

    status: str  # "ok", "error", "skipped", "duplicate", "test_event", "malformed"
    key: str | None = None
    result_key: str | None = None
    code: str | None = None
    detail: str | None = None


class _S3Image:
    """The ImageSource handed to backends: reads the object only if asked."""

    def __init__(self, ref: ObjectRef, storage: Storage, budget: MemoryBudget | None) -> None:
        self.ref = ref
        self._storage = storage
        self.budget = budget

    def read(self) -> bytes:
        return self._storage.read(self.ref)

    def read_head(self, length: int) -> bytes:
        return self._storage.read_head(self.ref, length)


class Pipeline:
    def __init__(
        self,
        *,
        input_prefix: str,
        image_suffixes: tuple[str, ...],
        thresholds: Thresholds,
        backend: InferenceBackend,
        storage: Storage,
        telemetry: Telemetry,
        log: LogSink,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        budget: MemoryBudget | None = None,
    ) -> None:
        self.input_prefix = input_prefix
        self.image_suffixes = image_suffixes
        self.thresholds = thresholds
        self.backend = backend
        self.storage = storage
        self.telemetry = telemetry
        self.log = log
        self.clock = clock
        self.budget = budget

    def handle_body(self, body: str) -> list[Outcome]:
        """Process every object in one SQS message body.

        Returns the outcomes when the message can be deleted. Raises TransientError when any object must
        be retried (after finishing the others, whose results a retry finds and does not redo).
        """
        try:
            parsed = events.parse_body(body)
        except MalformedMessage as exc:
            # Retrying cannot change a body. Logged with a sample for the operator, then acknowledged.
            self.log.error("Malformed message acknowledged", extra={"reason": str(exc), "body_sample": body[:256]})
            self.telemetry.outcome("malformed")
            return [Outcome(status="malformed", detail=str(exc))]
        if isinstance(parsed, S3TestEvent):
            self.log.info("S3 test event acknowledged", extra={"bucket": parsed.bucket})
            self.telemetry.outcome("test_event")
            return [Outcome(status="test_event")]
        outcomes: list[Outcome] = []
        retry: TransientError | None = None
        for event in parsed:
            try:
                outcomes.append(self.handle_object(event))
            except TransientError as exc:
                retry = retry or exc
        if retry is not None:
            raise retry
        return outcomes

    def handle_object(self, event: ObjectCreated) -> Outcome:
        ref = event.ref
        log_keys = {"object_key": ref.key, "bucket": ref.bucket, "version_id": ref.version_id}
        reason = events.skip_reason(event, self.input_prefix, self.image_suffixes)
        if reason is not None:
            self.log.info("Object skipped", extra={**log_keys, "reason": reason.value})
            self.telemetry.outcome("skipped")
            return Outcome(status="skipped", key=ref.key, detail=reason.value)

        result_key = events.result_key_for(ref.key)
        if len(result_key.encode("utf-8")) > MAX_KEY_BYTES:
            # Neither a result nor an error document fits beside the image: the DLQ is the only place left,
            # and the model is not called on the way there.
            self.log.error("Key too long for a result document", extra={**log_keys, "error_code": errors.KEY_TOO_LONG})
            self.telemetry.outcome("retry", errors.KEY_TOO_LONG)
            raise TransientError(
                errors.KEY_TOO_LONG, f"'{result_key[:60]}...' exceeds S3's {MAX_KEY_BYTES}-byte key limit"
            )
        if self._already_done(ref, result_key):
            self.log.info("Duplicate notification: result already recorded", extra=log_keys)
            self.telemetry.outcome("duplicate")
            return Outcome(status="duplicate", key=ref.key, result_key=result_key)

        received_at = self.clock()
        try:
            detection = self.backend.detect(_S3Image(ref, self.storage, self.budget), self.thresholds)
        except PermanentError as exc:
            return self._record_error(ref, result_key, exc, received_at, log_keys)
        except TransientError as exc:
            self.log.warning(
                "Transient failure; the message will be retried",
                extra={**log_keys, "error_code": exc.code, "error": exc.message, "request_id": exc.request_id},
            )
            self.telemetry.outcome("retry", exc.code)
            raise
        accepted, rejected = self.thresholds.split(detection.labels)
        document = results.result_document(
            ref=ref,
            backend=self.backend.name,
            model_id=self.backend.model_id,
            thresholds=self.thresholds,
            detection=detection,
            accepted=accepted,
            rejected=rejected,
            received_at=received_at,
            completed_at=self.clock(),
        )
        self._write(ref, result_key, document, log_keys)
        self.telemetry.detection(len(accepted), detection.latency_ms)
        self.telemetry.outcome("ok")
        self.log.info(
            "Result written",
            extra={
                **log_keys,
                "result_key": result_key,
                "labels": [label.name for label in accepted],
                "rejected_label_count": len(rejected),
                "backend_latency_ms": round(detection.latency_ms, 1),
                "sent_as": detection.image.sent_as,
            },
        )
        return Outcome(status="ok", key=ref.key, result_key=result_key)

    def _already_done(self, ref: ObjectRef, result_key: str) -> bool:
        """True when a result for this very object version (or, unversioned, this ETag) exists."""
        if ref.version_id is None and ref.etag is None:
            return False
        existing = self.storage.read_json(ref.bucket, result_key)
        if not existing or existing.get("status") not in ("ok", "error"):
            return False
        source = existing.get("source") or {}
        if ref.version_id is not None:
            return bool(source.get("version_id") == ref.version_id)
        return bool(source.get("etag") == ref.etag)

    def _record_error(
        self, ref: ObjectRef, result_key: str, error: ProcessingError, received_at: datetime, log_keys: dict[str, Any]
    ) -> Outcome:
        document = results.error_document(
            ref=ref,
            backend=self.backend.name,
            model_id=self.backend.model_id,
            thresholds=self.thresholds,
            error=error,
            received_at=received_at,
            completed_at=self.clock(),
        )
        self._write(ref, result_key, document, log_keys)
        self.log.warning(
            "Image cannot be processed; error document written",
            extra={**log_keys, "result_key": result_key, "error_code": error.code, "error": error.message},
        )
        self.telemetry.outcome("error", error.code)
        return Outcome(status="error", key=ref.key, result_key=result_key, code=error.code, detail=error.message)

    def _write(self, ref: ObjectRef, key: str, document: dict[str, Any], log_keys: dict[str, Any]) -> None:
        try:
            self.storage.write_json(ref.bucket, key, document)
        except TransientError as exc:  # storage says RESULT_WRITE_FAILED
            self.log.warning(
                "Result write failed; the message will be retried",
                extra={**log_keys, "error_code": exc.code, "error": exc.message},
            )
            self.telemetry.outcome("retry", exc.code)
            raise
