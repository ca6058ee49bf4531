"""Images and their results on a stack: upload, wait for outcomes, list results, download them annotated."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferctl.console import Progress
from inferctl.stack import outcomes
from inferctl.stack.annotate import annotate
from inferctl.stack.concurrency import concurrently
from inferctl.stack.errors import UsageError
from inferctl.stack.outcomes import ImageState, read_document
from inferctl.stack.target import Target
from lambdas.contract import rules
from lambdas.contract.events import result_key_for
from lambdas.contract.results import image_key_of


@dataclass(frozen=True)
class Upload:
    key: str
    size: int
    version_id: str | None = None


def image_files(place: Path, suffixes: Iterable[str] = rules.DEFAULT_IMAGE_SUFFIXES) -> tuple[list[Path], list[Path]]:
    """(images, other files) of a file or under a folder: suffixes match in any letter case, as in the function.
    FileNotFoundError when ``place`` does not exist, UsageError when it holds no image."""
    wanted = tuple(suffix.lower() for suffix in suffixes)
    if not place.exists():
        raise FileNotFoundError(2, "No such file or directory", str(place))
    if place.is_file():
        files = [place]
    else:
        files = sorted(p for p in place.rglob("*") if p.is_file() and not p.name.startswith("."))
    found = [p for p in files if p.name.lower().endswith(wanted)]
    if not found:
        what = f"{place} is not an image" if place.is_file() else f"no images under {place}"
        raise UsageError(f"{what}: the pipeline takes files ending in {' '.join(wanted)} (any letter case)")
    return found, [p for p in files if not p.name.lower().endswith(wanted)]


def image_items(
    place: Path, suffixes: Iterable[str] = rules.DEFAULT_IMAGE_SUFFIXES
) -> tuple[list[tuple[str, bytes]], list[Path]]:
    """(relative key, bytes) of each image of ``place`` (a file: its name; a folder: the path under it), and the
    files skipped for their suffix."""
    files, ignored = image_files(place, suffixes)
    base = place.parent if place.is_file() else place
    return [(path.relative_to(base).as_posix(), path.read_bytes()) for path in files], ignored


def upload_many(
    target: Target, items: list[tuple[str, bytes]], progress: bool = True, concurrency: int = 1
) -> list[Upload]:
    """Put each (relative key, bytes) under the input prefix, in order, or ``concurrency`` at a time (as
    ``aws s3 cp --recursive`` does, 10 by default: the same key twice in ``items`` may then land in either order)."""
    s3 = target.client("s3")
    bar = Progress(len(items), "upload") if progress else None

    def put(item: tuple[str, bytes]) -> Upload:
        relative, data = item
        key = target.input_prefix + relative
        response = s3.put_object(Bucket=target.bucket, Key=key, Body=data)
        return Upload(key=key, size=len(data), version_id=response.get("VersionId"))

    sent = map(put, items) if concurrency <= 1 else (upload for _, upload in concurrently(items, put, concurrency))
    uploads = []
    for done, upload in enumerate(sent, start=1):
        uploads.append(upload)
        if bar:
            bar.update(done)
    if bar:
        bar.close()
    return uploads


def wait_for(
    target: Target,
    keys: list[str],
    timeout: float,
    progress: bool = True,
    poll_seconds: float = 0.5,
    idle: Callable[[], None] | None = None,
    versions: dict[str, str | None] | None = None,
) -> dict[str, ImageState]:
    """Poll until every key has a result, an error document or a dead letter, or the timeout passes. With
    ``versions`` (key -> version id), only an outcome of that version counts (an older one is still pending)."""
    s3, sqs = target.client("s3"), target.client("sqs")
    bar = Progress(len(keys), "results") if progress else None
    deadline = time.monotonic() + timeout
    settled: dict[str, ImageState] = {}
    listing = True
    while True:
        pending = [key for key in keys if key not in settled]
        present = listed_results(s3, target.bucket, pending) if listing else None
        listing = present is not None  # a listing too long for what it saves is not tried again
        found = outcomes.collect(s3, sqs, target.bucket, target.dead_letter_queue_url, pending, versions, present)
        settled.update({key: outcome for key, outcome in found.items() if outcome.settled})
        if bar:
            counts = {state: sum(1 for o in settled.values() if o.state == state) for state in ("ok", "error")}
            bar.update(len(settled), f"ok={counts['ok']} error={counts['error']}")
        if len(settled) == len(keys) or time.monotonic() > deadline:
            break
        if idle:
            idle()
        time.sleep(poll_seconds)
    if bar:
        bar.close()
    return {key: settled.get(key) or found.get(key) or ImageState(key=key, state="pending") for key in keys}


def listed_results(s3: Any, bucket: str, keys: list[str]) -> set[str] | None:
    """Which of ``keys``' result keys exist now, from a listing of their common prefix, so that a wait reads only
    the results that came (not a GET per pending image per poll). The listing may take at most half as many
    requests as reading each key would; None when it would take more (the prefix holds much else): read them."""
    pages = len(keys) // 2
    if not pages:
        return None
    wanted = {result_key_for(key) for key in keys}
    present: set[str] = set()
    paginator = s3.get_paginator("list_objects_v2")
    for number, page in enumerate(paginator.paginate(Bucket=bucket, Prefix=common_prefix(keys)), start=1):
        present.update(item["Key"] for item in page.get("Contents", ()) if item["Key"] in wanted)
        if page.get("IsTruncated") and number >= pages:
            return None
    return present


def common_prefix(keys: list[str]) -> str:
    """The longest string every key starts with (an S3 prefix: characters, not path components)."""
    low, high = min(keys), max(keys)
    return low[: next((i for i, (a, b) in enumerate(zip(low, high, strict=False)) if a != b), len(low))]


def iter_results(target: Target, prefix: str | None = None) -> Iterator[dict[str, Any]]:
    """Every outcome document under ``prefix`` (the input prefix), streamed: listed a page at a time and read
    ``outcomes.READ_WORKERS`` at a time, a chunk held at once, whatever the bucket's size. What the function
    did not write (a user's JSON, a forged document) is not a result and is left out."""
    s3 = target.client("s3")

    def result_keys() -> Iterator[str]:
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=target.bucket, Prefix=prefix or target.input_prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith(rules.RESULT_SUFFIX):
                    yield item["Key"]

    def read(key: str) -> dict[str, Any] | None:
        return read_document(s3, target.bucket, key, image_key_of(key))[0]

    for _, document in concurrently(result_keys(), read):
        if document is not None:
            yield document


class Downloader:
    """Each result JSON, plus an annotated PNG of its image, under ``folder`` by key: one document at a time."""

    def __init__(self, target: Target, folder: Path) -> None:
        self.target = target
        self.folder = folder
        self.s3 = target.client("s3")
        self.written = 0
        self.colours: dict[str, str] | None = None  # the run's label colours (console.label_colours), when known

    def add(self, document: dict[str, Any]) -> list[Path]:
        key = document["source"]["key"]
        prefix = self.target.input_prefix
        relative = key[len(prefix) :] if key.startswith(prefix) else key
        json_path = self.folder / "results" / (relative + rules.RESULT_SUFFIX)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
        written = [json_path]
        if document.get("status") == "ok":
            kwargs = {"Bucket": self.target.bucket, "Key": key}
            if document["source"].get("version_id"):
                kwargs["VersionId"] = document["source"]["version_id"]
            image = self.s3.get_object(**kwargs)["Body"].read()
            png_path = self.folder / "annotated" / (relative + ".png")
            png_path.parent.mkdir(parents=True, exist_ok=True)
            png_path.write_bytes(annotate(image, document, self.colours))
            written.append(png_path)
        self.written += len(written)
        return written


def download(
    target: Target, documents: Iterable[dict[str, Any]], folder: Path, colours: dict[str, str] | None = None
) -> list[Path]:
    """Each result JSON, plus an annotated PNG of its image, under ``folder`` by key."""
    downloader = Downloader(target, folder)
    downloader.colours = colours
    return [path for document in documents for path in downloader.add(document)]
