"""Where each image ended: a result, an error document, the dead-letter queue, or nowhere yet."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from lambdas.inference.events import result_key_for


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


def keys_in_body(body: str) -> tuple[str, ...]:
    try:
        records = json.loads(body).get("Records", [])
        return tuple(unquote_plus(r["s3"]["object"]["key"]) for r in records)
    except (ValueError, AttributeError, KeyError, TypeError):
        return ()


def dead_letters(sqs: Any, dlq_url: str, limit: int = 1000) -> list[DeadLetter]:
    """Peek at the DLQ: each message is received and made visible again at once."""
    seen: dict[str, DeadLetter] = {}
    for _ in range(max(1, limit // 10)):
        messages = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            attributes = message.get("Attributes", {})
            seen[message["MessageId"]] = DeadLetter(
                message_id=message["MessageId"],
                keys=keys_in_body(message["Body"]),
                receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
                body=message["Body"],
            )
    return list(seen.values())


def read_result(s3: Any, bucket: str, image_key: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=result_key_for(image_key))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    document: dict[str, Any] = json.loads(body)
    return document


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
