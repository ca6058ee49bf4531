"""What happens to one SQS message: parse the S3 notification, and for each image run the model, apply the
thresholds and write the result (or an error document). No boto3 here: storage and backend are passed in.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from lambdas.contract import errors, events, ordering, results
from lambdas.contract.errors import PermanentError, ProcessingError, TransientError
from lambdas.contract.events import MalformedMessage, ObjectCreated, S3TestEvent
from lambdas.contract.thresholds import Thresholds
from lambdas.contract.values import ImageFacts, ObjectRef
from lambdas.inference.backends.base import InferenceBackend
from lambdas.inference.images.budget import MemoryBudget
from lambdas.inference.images.prepare import HEADER_BYTES
from lambdas.inference.storage import Existing, Head, ObjectGone, WriteConflict

if TYPE_CHECKING:  # a stack without a challenger never loads it
    from lambdas.inference.challenger import Challenger

MAX_KEY_BYTES = 1024  # S3's limit for an object key, in UTF-8 bytes
MAX_ROW_BYTES = 1000 * 1024  # Firehose refuses a record above 1,000 KiB
WRITE_ATTEMPTS = 3  # conditional writes lost to another invocation before the message is retried


class Storage(Protocol):
    def read(self, ref: ObjectRef) -> bytes: ...
    def read_head(self, ref: ObjectRef, length: int) -> bytes: ...
    def head_current(self, bucket: str, key: str, length: int, *, whole: bool = False) -> Head: ...
    def read_rest(self, ref: ObjectRef, head: Head) -> bytes: ...
    def read_result(self, bucket: str, key: str) -> Existing | None: ...
    def write_json(
        self, bucket: str, key: str, document: dict[str, Any], *, if_match: str | None = None, if_absent: bool = False
    ) -> None: ...


class Telemetry(Protocol):
    """Where counts and latencies go (Powertools Metrics in the Lambda, a list in tests)."""

    def outcome(self, status: Status, code: str | None = None) -> None: ...
    def detection(self, labels_found: int, latency_ms: float) -> None: ...
    def labels(self, accepted: list[str], near: list[str]) -> None: ...
    def challenger(self, section: dict[str, Any]) -> None: ...


class LogSink(Protocol):
    def info(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
    def error(self, msg: str, *args: Any, **kwargs: Any) -> None: ...


class Status(StrEnum):
    """How one object (or a message without objects) ended."""

    OK = "ok"  # a result was written
    ERROR = "error"  # an error document was written
    SKIPPED = "skipped"  # not an image under the prefix
    DUPLICATE = "duplicate"  # this version's outcome is already recorded
    SUPERSEDED = "superseded"  # a later version has (or will have) its own outcome
    DELETED = "deleted"  # the object was gone before it was processed
    TEST_EVENT = "test_event"  # S3's s3:TestEvent
    MALFORMED = "malformed"  # not an S3 notification
    RETRY = "retry"  # counted, never an Outcome: the message goes back to the queue (TransientError)


class Outcome(NamedTuple):
    """How one object (or a message without objects) ended."""

    status: Status
    key: str | None = None
    result_key: str | None = None
    code: str | None = None
    detail: str | None = None
    row: bytes | None = None  # the outcome table's row for the document written (or found, on a redelivery)


class BatchScope:
    """The records of one invocation: each object version (or ETag) is worked on once, however many of the
    batch's notifications name it. Later claimants wait for the first and share its outcome (or its retry)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: dict[tuple[str, str, str], Future[Outcome]] = {}

    def claim(self, identity: tuple[str, str, str]) -> tuple[bool, Future[Outcome]]:
        """(True, future to settle) for the first claimant, (False, the first's future) for the others."""
        with self._lock:
            if identity in self._claims:
                return False, self._claims[identity]
            future: Future[Outcome] = Future()
            self._claims[identity] = future
            return True, future


class _S3Image:
    """The ImageSource handed to backends: the event's version. Its first bytes are already here (the pipeline
    read them to check the version is current); the rest comes from the same response when the pipeline asked
    for the whole object, read only if the backend asks. The bytes are not kept: a second reader (the
    challenger) reads the version again, so memory holds them only inside a decode reservation."""

    def __init__(self, ref: ObjectRef, storage: Storage, budget: MemoryBudget | None, head: Head) -> None:
        self.ref = ref
        self._storage = storage
        self.budget = budget
        self._head = head
        self._streamed = False

    def read(self) -> bytes:
        if self._head.complete:
            return self._head.data
        if self._streamed:
            return self._storage.read(self.ref)
        self._streamed = True
        return self._storage.read_rest(self.ref, self._head)

    def read_head(self, length: int) -> bytes:
        data = self._head.data
        if length <= len(data) or len(data) < HEADER_BYTES:  # shorter: it is the whole object
            return data[:length]
        return self._storage.read_head(self.ref, length)


def _as_stored(document: dict[str, Any]) -> Any:
    """The document as S3 will give it back (JSON has lists, not tuples)."""
    return json.loads(json.dumps(document))


def _describes(ref: ObjectRef, head: Head) -> bool:
    """The notification still describes the key's current version (by version id, else by ETag)."""
    if ref.version_id:
        return not head.version_id or head.version_id == ref.version_id
    if ref.etag and head.etag:
        return head.etag == ref.etag
    return True  # nothing to compare (an emulator that gives neither): the event is taken at its word


def _decode_facts(facts: ImageFacts) -> dict[str, Any]:
    """How the image was decoded, for the log: where, and what was reserved and held (MB)."""
    if facts.decoded_in is None:
        return {}
    mb = 1024 * 1024
    decode: dict[str, Any] = {
        "in": facts.decoded_in,
        "format": facts.format,
        "pixels": (facts.width or 0) * (facts.height or 0),
    }
    if facts.decode_reserved is not None:
        decode["reserved_mb"] = round(facts.decode_reserved / mb, 1)
    if facts.decode_held is not None:
        decode["held_mb"] = round(facts.decode_held / mb, 1)
    return {"decode": decode}


def _verdict(ref: ObjectRef, existing: Existing | None) -> ordering.Verdict:
    """``ordering.judge`` on what sits at the result key. A document from before the producer mark (schema 1.0-1.4)
    is never taken at its word: whatever it says it answers, it is replaced only after the same check as an
    unordered one (this version is still the key's current one)."""
    if existing is None or existing.document is None:
        return ordering.Verdict.PROCESS
    if existing.legacy:
        return ordering.Verdict.UNORDERED
    return ordering.judge(ref, existing.document)


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
        challenger: Challenger | None = None,
        rows: bool = False,
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
        self.challenger = challenger
        self.rows = rows  # build the outcome table's row of each document written

    def handle_body(self, body: str, scope: BatchScope | None = None, *, redelivered: bool = False) -> list[Outcome]:
        """Process every object in one SQS message body.

        Returns the outcomes when the message can be deleted. Raises TransientError when any object must
        be retried (after finishing the others, whose results a retry finds and does not redo).
        ``redelivered``: SQS has delivered this message before, so its outcome may already be written (or its
        result key be taken): the result key is read before the model is called, as it is not the first time.
        """
        try:
            parsed = events.parse_body(body)
        except MalformedMessage as exc:
            # Retrying cannot change a body. Logged with a sample for the operator, then acknowledged.
            self.log.error("Malformed message acknowledged", extra={"reason": str(exc), "body_sample": body[:256]})
            self.telemetry.outcome(Status.MALFORMED)
            return [Outcome(status=Status.MALFORMED, detail=str(exc))]
        if isinstance(parsed, S3TestEvent):
            self.log.info("S3 test event acknowledged", extra={"bucket": parsed.bucket})
            self.telemetry.outcome(Status.TEST_EVENT)
            return [Outcome(status=Status.TEST_EVENT)]
        scope = scope or BatchScope()
        outcomes: list[Outcome] = []
        retry: TransientError | None = None
        for event in parsed:
            try:
                outcomes.append(self.handle_object(event, scope, redelivered=redelivered))
            except TransientError as exc:
                retry = retry or exc
        if retry is not None:
            raise retry
        return outcomes

    def handle_object(
        self, event: ObjectCreated, scope: BatchScope | None = None, *, redelivered: bool = False
    ) -> Outcome:
        ref = event.ref
        log_keys = {"object_key": ref.key, "bucket": ref.bucket, "version_id": ref.version_id}
        reason = events.skip_reason(event, self.input_prefix, self.image_suffixes)
        if reason is not None:
            self.log.info("Object skipped", extra={**log_keys, "reason": reason.value})
            self.telemetry.outcome(Status.SKIPPED)
            return Outcome(status=Status.SKIPPED, key=ref.key, detail=reason.value)

        result_key = events.result_key_for(ref.key)
        if len(result_key.encode("utf-8")) > MAX_KEY_BYTES:
            # Neither a result nor an error document fits beside the image: the DLQ is the only place left,
            # and the model is not called on the way there.
            self.log.error("Key too long for a result document", extra={**log_keys, "error_code": errors.KEY_TOO_LONG})
            self.telemetry.outcome(Status.RETRY, errors.KEY_TOO_LONG)
            raise TransientError(
                errors.KEY_TOO_LONG, f"'{result_key[:60]}...' exceeds S3's {MAX_KEY_BYTES}-byte key limit"
            )
        identity = ref.version_id or ref.etag
        if scope is None or identity is None:
            return self._process(ref, result_key, log_keys, redelivered)
        first, future = scope.claim((ref.bucket, ref.key, identity))
        if not first:
            shared = future.result()  # re-raises the first's TransientError: both messages are retried
            self.log.info("Same object twice in one batch: worked on once", extra={**log_keys, "shared": shared.status})
            self.telemetry.outcome(Status.DUPLICATE)
            return Outcome(status=Status.DUPLICATE, key=ref.key, result_key=result_key, detail="twice in one batch")
        try:
            outcome = self._process(ref, result_key, log_keys, redelivered)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        future.set_result(outcome)
        return outcome

    def _process(self, ref: ObjectRef, result_key: str, log_keys: dict[str, Any], redelivered: bool) -> Outcome:
        # One GET of the key's current version: is this notification still about it, and its first bytes (the
        # whole object, streamed, when the backend sends bytes). On a first delivery the result key is not read:
        # it almost never exists, and the conditional write finds out when it does. A redelivered message
        # (a retry, a function cut short) reads it first: no second model call for an outcome already written,
        # nor for a key that something else holds.
        started = time.perf_counter()
        existing: Existing | None = None
        if redelivered:
            existing = self._existing(ref, result_key, log_keys)
            if _verdict(ref, existing) is ordering.Verdict.DUPLICATE:
                settled = self._settled(Status.DUPLICATE, ref, result_key, log_keys)
                # Its row may not have reached the table (the stream failed, the invocation ended): send it again.
                return settled._replace(row=self._row(existing.document if existing else None))
        try:
            head = self.storage.head_current(ref.bucket, ref.key, HEADER_BYTES, whole=self.backend.needs_bytes(ref))
        except ObjectGone:
            return self._settled(Status.DELETED, ref, result_key, log_keys)
        try:
            if not _describes(ref, head):
                # A newer version is current: its own notification brings its outcome.
                return self._settled(Status.SUPERSEDED, ref, result_key, log_keys)
            if ref.size is None and head.size is not None:
                ref = ref._replace(size=head.size)
            if ref.version_id is None and head.version_id and ref.etag and head.etag == ref.etag:
                ref = ref._replace(version_id=head.version_id)  # record the version that was read
            return self._detect_and_write(ref, result_key, log_keys, head, existing, started)
        finally:
            head.close()

    def _detect_and_write(
        self,
        ref: ObjectRef,
        result_key: str,
        log_keys: dict[str, Any],
        head: Head,
        existing: Existing | None,
        started: float,
    ) -> Outcome:
        received_at = self.clock()
        image = _S3Image(ref, self.storage, self.budget, head)
        try:
            detection = self.backend.detect(image, self.thresholds)
        except PermanentError as exc:
            if exc.code == errors.OBJECT_NOT_FOUND:  # the version went away after we looked
                return self._settled(Status.DELETED, ref, result_key, log_keys)
            return self._record_error(ref, result_key, exc, received_at, log_keys, existing)
        except TransientError as exc:
            self.log.warning(
                "Transient failure; the message will be retried",
                extra={**log_keys, "error_code": exc.code, "error": exc.message, "request_id": exc.request_id},
            )
            self.telemetry.outcome(Status.RETRY, exc.code)
            raise
        accepted, candidates, dropped = self.thresholds.split(detection.labels)
        shadow = None
        if self.challenger is not None and self.challenger.sampled(ref):
            # After the primary answered, on its own client with one attempt: it cannot change the outcome.
            shadow = self.challenger.run(image, self.thresholds)
            self.telemetry.challenger(shadow)
        document = results.result_document(
            ref=ref,
            backend=self.backend.name,
            model_id=self.backend.model_id,
            thresholds=self.thresholds,
            detection=detection,
            accepted=accepted,
            candidates=candidates,
            rejected_count=len(candidates) + dropped,
            received_at=received_at,
            completed_at=self.clock(),
            challenger=shadow,
        )
        lost_to = self._write(ref, result_key, document, log_keys, existing)
        if lost_to:
            return self._settled(lost_to, ref, result_key, log_keys)
        self.telemetry.detection(len(accepted), detection.latency_ms)
        self.telemetry.labels(sorted({label.name for label in accepted}), self.thresholds.near_below(candidates))
        self.telemetry.outcome(Status.OK)
        row = self._row(document)
        self.log.info(
            "Result written",
            extra={
                **log_keys,
                "result_key": result_key,
                "labels": [label.name for label in accepted],
                "candidate_count": len(candidates),
                "backend_latency_ms": round(detection.latency_ms, 1),
                # This image's critical path in the function: its first S3 call to its result written.
                "record_ms": round((time.perf_counter() - started) * 1000, 1),
                "sent_as": detection.image.sent_as,
                **_decode_facts(detection.image),
            },
        )
        return Outcome(status=Status.OK, key=ref.key, result_key=result_key, row=row)

    def _row(self, document: dict[str, Any] | None) -> bytes | None:
        """The outcome table's row of a document now at its result key (stamped now: after its write). Firehose
        takes a record of 1,000 KiB at most: a larger row goes without its document (the tools read that one from
        S3), then without the challenger's labels, then with the most confident half of its labels, until it fits."""
        if not self.rows or document is None:
            return None
        from lambdas.contract import outcome_table  # a stack without the table never loads it

        row = outcome_table.row(document, self.clock())
        data = outcome_table.encode(row)
        if len(data) > MAX_ROW_BYTES:
            row["document"] = None
            data = outcome_table.encode(row)
        while len(data) > MAX_ROW_BYTES and (row["challenger_labels"] or row["labels"]):
            if row["challenger_labels"]:
                row["challenger_labels"] = []
            else:
                row["labels"] = row["labels"][: len(row["labels"]) // 2]
            data = outcome_table.encode(row)
        return data

    def _current_now(self, ref: ObjectRef) -> Status | None:
        """None when ``ref`` is still the key's current version; otherwise the outcome to settle with."""
        try:
            head = self.storage.head_current(ref.bucket, ref.key, 1)
        except ObjectGone:
            return Status.DELETED
        return None if _describes(ref, head) else Status.SUPERSEDED

    def _existing(self, ref: ObjectRef, result_key: str, log_keys: dict[str, Any]) -> Existing | None:
        """The outcome document at the result key. Something else there (a user's own JSON) is never replaced:
        the message goes back to SQS, and to the DLQ, without a model call, until the key is freed."""
        existing = self.storage.read_result(ref.bucket, result_key)
        if existing is not None and existing.foreign:
            self.log.error(
                "The result key holds a document that is not ours; not replacing it",
                extra={
                    **log_keys,
                    "result_key": result_key,
                    "error_code": errors.RESULT_KEY_TAKEN,
                    "reason": existing.reason,
                },
            )
            self.telemetry.outcome(Status.RETRY, errors.RESULT_KEY_TAKEN)
            raise TransientError(
                errors.RESULT_KEY_TAKEN,
                f"{result_key} exists and {existing.reason or 'is not a result document'}; "
                "rename or remove it, then redrive",
            )
        return existing

    def _settled(self, status: Status, ref: ObjectRef, result_key: str, log_keys: dict[str, Any]) -> Outcome:
        """An outcome that needs no model call and writes nothing."""
        messages = {
            Status.DUPLICATE: "Duplicate notification: this version's outcome is already recorded",
            Status.SUPERSEDED: "Superseded: a later version of this key has (or will have) its own outcome",
            Status.DELETED: "The object was deleted before it was processed; nothing to record",
        }
        self.log.info(messages[status], extra={**log_keys, "sequencer": ref.sequencer})
        self.telemetry.outcome(status)
        return Outcome(status=status, key=ref.key, result_key=result_key)

    def _record_error(
        self,
        ref: ObjectRef,
        result_key: str,
        error: ProcessingError,
        received_at: datetime,
        log_keys: dict[str, Any],
        existing: Existing | None,
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
        lost_to = self._write(ref, result_key, document, log_keys, existing)
        if lost_to:
            return self._settled(lost_to, ref, result_key, log_keys)
        self.log.warning(
            "Image cannot be processed; error document written",
            extra={**log_keys, "result_key": result_key, "error_code": error.code, "error": error.message},
        )
        self.telemetry.outcome(Status.ERROR, error.code)
        return Outcome(
            status=Status.ERROR,
            key=ref.key,
            result_key=result_key,
            code=error.code,
            detail=error.message,
            row=self._row(document),
        )

    def _write(
        self, ref: ObjectRef, key: str, document: dict[str, Any], log_keys: dict[str, Any], existing: Existing | None
    ) -> Status | None:
        """Write the outcome if the result key is as read (``If-None-Match: *`` when nothing was read or nothing
        was there, ``If-Match`` its ETag otherwise). When it is not, read what is there
        and judge: the same version's outcome is a duplicate (returns DUPLICATE); a later event's outcome wins
        (SUPERSEDED) unless this version is still the key's current one (the version that document answers was
        deleted since, or the document does not say what it is); an earlier event's outcome is replaced, only
        over what was read (``If-Match``). Something that is not ours is never replaced (RESULT_KEY_TAKEN).
        None when written."""
        for _ in range(WRITE_ATTEMPTS):
            try:
                self.storage.write_json(
                    ref.bucket, key, document, if_match=existing.etag if existing else None, if_absent=existing is None
                )
                return None
            except WriteConflict:
                existing = self._existing(ref, key, log_keys)
                if existing is not None and existing.document == _as_stored(document):
                    # This very write landed and its answer was lost: botocore retried the PUT, and the retry
                    # found the key taken by it (412). Written, not a duplicate.
                    return None
                verdict = _verdict(ref, existing)
                if verdict is ordering.Verdict.DUPLICATE:
                    return Status.DUPLICATE
                if verdict in (ordering.Verdict.SUPERSEDED, ordering.Verdict.UNORDERED):
                    lost_to = self._current_now(ref)
                    if lost_to:
                        return lost_to
                    if verdict is ordering.Verdict.SUPERSEDED:
                        self.log.warning(
                            "The result answers a version that is no longer current; replacing it",
                            extra={
                                **log_keys,
                                "recorded": (existing.document or {}).get("source") if existing else None,
                            },
                        )
            except TransientError as exc:  # storage says RESULT_WRITE_FAILED
                self.log.warning(
                    "Result write failed; the message will be retried",
                    extra={**log_keys, "error_code": exc.code, "error": exc.message},
                )
                self.telemetry.outcome(Status.RETRY, exc.code)
                raise
        self.telemetry.outcome(Status.RETRY, errors.RESULT_WRITE_FAILED)
        raise TransientError(errors.RESULT_WRITE_FAILED, f"{key} kept changing while it was written")
