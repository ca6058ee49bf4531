"""Where each image ended: a result, an error document, the dead-letter queue, or nowhere yet."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from lambdas.inference.core.events import keys_in, result_key_for
from lambdas.inference.storage import FOREIGN, MAX_RESULT_DOCUMENT_BYTES, document_kind

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    keys: tuple[str, ...]
    receive_count: int
    body: str


@dataclass(frozen=True)
class ImageState:
    key: str
    state: str  # "ok", "error", "dead_letter", "pending"
    document: dict[str, Any] | None = None
    dead_letter: DeadLetter | None = None

    @property
    def settled(self) -> bool:
        return self.state != "pending"


def dead_letters(sqs: Any, dlq_url: str, limit: int = 1000, hold_seconds: int = 30) -> list[DeadLetter]:
    """Peek at the DLQ without consuming it. Each received message stays hidden for ``hold_seconds`` so the next
    receive brings new ones (a receive with no visibility timeout keeps answering with the same few), and at the
    end every message seen is made visible again at once. Nothing is deleted."""
    seen: dict[str, DeadLetter] = {}
    handles: dict[str, str] = {}
    empty = 0
    try:
        while len(seen) < limit and empty < 2:
            messages = sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=hold_seconds,
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            empty = 0 if messages else empty + 1
            for message in messages:
                handles[message["MessageId"]] = message["ReceiptHandle"]
                attributes = message.get("Attributes", {})
                seen[message["MessageId"]] = DeadLetter(
                    message_id=message["MessageId"],
                    keys=tuple(keys_in(message["Body"])),  # the function's own parser: every shape it takes
                    receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
                    body=message["Body"],
                )
    finally:
        _release(sqs, dlq_url, list(handles.items()))
    return list(seen.values())


def _release(sqs: Any, queue_url: str, handles: list[tuple[str, str]]) -> None:
    for start in range(0, len(handles), 10):
        entries = [
            {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for index, (_, handle) in enumerate(handles[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)


# Reads in flight at once when a tool reads many documents: S3 serves thousands of GETs per second per prefix,
# so one machine's threads (and the JSON parsing, one core under the GIL) are the limit; the chunk bounds how
# many documents are held at once, whatever the bucket's size.
READ_WORKERS = 32
CHUNK = 256


def concurrently(
    items: Iterable[T], read: Callable[[T], R], workers: int = READ_WORKERS, chunk: int = CHUNK
) -> Iterator[tuple[T, R]]:
    """``(item, read(item))`` in the items' order, ``workers`` reads at a time, ``chunk`` items held at once."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        batch: list[T] = []
        for item in items:
            batch.append(item)
            if len(batch) == chunk:
                yield from zip(batch, pool.map(read, batch), strict=True)
                batch = []
        yield from zip(batch, pool.map(read, batch), strict=True)


def read_result(s3: Any, bucket: str, image_key: str) -> dict[str, Any] | None:
    """The outcome document beside an image, or None: nothing there, or something the function did not write
    (a user's JSON, a forged document without the function's metadata, more than a document can hold)."""
    return read_document(s3, bucket, result_key_for(image_key), image_key)[0]


def read_document(s3: Any, bucket: str, key: str, image_key: str) -> tuple[dict[str, Any] | None, str]:
    """(the document, its kind: storage.OURS / LEGACY / FOREIGN, or "absent")."""
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        return None, "absent"
    body = response["Body"]
    try:
        if int(response.get("ContentLength") or 0) > MAX_RESULT_DOCUMENT_BYTES:
            return None, FOREIGN
        raw = body.read(MAX_RESULT_DOCUMENT_BYTES + 1)
    finally:
        body.close()
    try:
        document = json.loads(raw)
    except ValueError:
        return None, FOREIGN
    kind = document_kind(document, image_key, response.get("Metadata") or {})
    return (document if kind != FOREIGN else None), kind


def collect(
    s3: Any, sqs: Any, bucket: str, dlq_url: str, keys: list[str], versions: dict[str, str | None] | None = None
) -> dict[str, ImageState]:
    states: dict[str, ImageState] = {}
    for key in keys:
        document = read_result(s3, bucket, key)
        wanted = (versions or {}).get(key)
        if document is not None and wanted and (document.get("source") or {}).get("version_id") != wanted:
            document = None  # the outcome of an older version: this one's is still to come
        if document is not None:
            states[key] = ImageState(key=key, state=str(document.get("status", "error")), document=document)
    missing = [key for key in keys if key not in states]
    if missing:
        by_key = {key: letter for letter in dead_letters(sqs, dlq_url) for key in letter.keys}
        for key in missing:
            letter = by_key.get(key)
            states[key] = ImageState(key=key, state="dead_letter" if letter else "pending", dead_letter=letter)
    return states
