"""The bucket's images paired with their outcome documents, in one pass over the listing and in bounded memory.

S3 lists keys in order, and every key between an image ``K`` and its outcome ``K.json`` starts with ``K``.
So one pass over the listing pairs each image with its document using a stack of the images still waiting
for theirs (as deep as keys nest, in practice one or two): when a key arrives that an image on the stack is
not a prefix of, that image's document would already have been listed, so it has none.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from inferctl.stack.concurrency import concurrently
from inferctl.stack.outcomes import read_document
from inferctl.stack.target import Target
from lambdas.contract.rules import RESULT_SUFFIX


@dataclass(frozen=True)
class Entry:
    """An image and the outcome document beside it (its key), as listed."""

    key: str
    etag: str
    size: int
    last_modified: datetime
    result_key: str | None


def listing(s3: Any, bucket: str, prefix: str, suffixes: tuple[str, ...], start_after: str = "") -> Iterator[Entry]:
    paginator = s3.get_paginator("list_objects_v2")
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        kwargs["StartAfter"] = start_after
    pending: list[dict[str, Any]] = []  # images whose document may still come, nested prefixes
    for page in paginator.paginate(**kwargs):
        for item in page.get("Contents", []):
            key = item["Key"]
            while pending and not key.startswith(pending[-1]["Key"]):
                yield _entry(pending.pop(), None)
            if pending and key == pending[-1]["Key"] + RESULT_SUFFIX:
                yield _entry(pending.pop(), key)
                continue
            if key.lower().endswith(suffixes) and not key.endswith("/"):
                pending.append(item)
    while pending:
        yield _entry(pending.pop(), None)


def _entry(item: dict[str, Any], result_key: str | None) -> Entry:
    return Entry(
        key=item["Key"],
        etag=str(item.get("ETag", "")).strip('"'),
        size=int(item.get("Size", 0)),
        last_modified=item["LastModified"],
        result_key=result_key,
    )


def with_documents(target: Target, entries: Iterator[Entry]) -> Iterator[tuple[Entry, dict[str, Any] | None]]:
    """Each entry with its document read (``concurrency.concurrently``: bounded reads in flight and in memory)."""
    s3 = target.client("s3")

    def read(entry: Entry) -> dict[str, Any] | None:
        if entry.result_key is None:
            return None
        try:
            document, _ = read_document(s3, target.bucket, entry.result_key, entry.key)
        except Exception:  # noqa: BLE001 - unreadable: not one of our documents
            return None
        return document

    return concurrently(entries, read)


def answers_another_upload(entry: Entry, document: dict[str, Any] | None) -> bool:
    """The document beside the image answers another upload of its key than the one listed now."""
    recorded = ((document or {}).get("source") or {}).get("etag")
    return bool(recorded) and recorded != entry.etag
