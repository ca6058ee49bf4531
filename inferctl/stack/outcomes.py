"""Where each image ended: a result, an error document, the dead-letter queue, or nowhere yet."""

from __future__ import annotations

import json
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

from inferctl.stack.deadletters import DeadLetter, dead_letters
from lambdas.contract.events import result_key_for
from lambdas.contract.results import FOREIGN, MAX_RESULT_DOCUMENT_BYTES, document_kind


@dataclass(frozen=True)
class ImageState:
    key: str
    state: str  # "ok", "error", "dead_letter", "pending"
    document: dict[str, Any] | None = None
    dead_letter: DeadLetter | None = None

    @property
    def settled(self) -> bool:
        return self.state != "pending"


def read_result(s3: Any, bucket: str, image_key: str) -> dict[str, Any] | None:
    """The outcome document beside an image, or None: nothing there, or something the function did not write
    (a user's JSON, a forged document without the function's metadata, more than a document can hold)."""
    return read_document(s3, bucket, result_key_for(image_key), image_key)[0]


def read_document(s3: Any, bucket: str, key: str, image_key: str) -> tuple[dict[str, Any] | None, str]:
    """(the document, its kind: results.OURS / LEGACY / FOREIGN, or "absent")."""
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
    s3: Any,
    sqs: Any,
    bucket: str,
    dlq_url: str,
    keys: list[str],
    versions: dict[str, str | None] | None = None,
    present: Container[str] | None = None,
) -> dict[str, ImageState]:
    """Each image's state now. ``present``: the result keys known to exist (a listing); an image whose result key
    is not among them has none, and is not read."""
    states: dict[str, ImageState] = {}
    for key in keys:
        if present is not None and result_key_for(key) not in present:
            continue
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
