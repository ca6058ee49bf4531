"""A generated population of images and their outcomes, as the function would have left them: the documents in the
image bucket (the last written per key) and every row the stream delivered (repeated, reordered, several days),
held in an in-memory S3 that the operator tool's scan and the outcome table's sync both read.

What it holds, by share of images (seeded, so every run generates the same):
- results with 0-4 labels and candidates of six names, thresholds 50 (bee 80, car 65.5), floor 30; some written
  with older thresholds or another model (stale); a challenger on some (ok or failed);
- error documents of several codes;
- a second version of the key (superseded: its first document's row is in the stream too), a forced re-run, an
  upload newer than its document (the document answers an older upload), images without any outcome (recent ones
  waiting, old ones missing, some in the dead-letter queue);
- rows delivered twice, out of order, across six days; keys with spaces, quotes, ``%``, ``+`` and accents.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from lambdas.contract import outcome_table
from lambdas.contract.errors import PermanentError
from lambdas.contract.results import PRODUCER, PRODUCER_METADATA, error_document, iso, result_document
from lambdas.contract.thresholds import Thresholds
from lambdas.contract.values import BoundingBox, Detection, ImageFacts, Label, ObjectRef

NAMES = ("bee", "wasp", "flower", "leaf", "person", "car")
THRESHOLDS = Thresholds(50.0, {"bee": 80.0, "car": 65.5}, 30.0)
OLDER_THRESHOLDS = Thresholds(55.0, {"bee": 80.0}, 30.0)
MODEL, OLDER_MODEL = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v2/1", "older-model"
CODES = ("IMAGE_TOO_LARGE", "UNSUPPORTED_FORMAT", "CORRUPT_IMAGE", "MODEL_ERROR")
START = datetime(2026, 11, 20, tzinfo=UTC)
DAYS = 6
ROWS_PREFIX = "rows/"


class NoSuchKey(Exception):
    pass


@dataclass
class Stored:
    body: bytes
    etag: str
    modified: datetime
    metadata: dict[str, str] = field(default_factory=dict)


class MemoryS3:
    """``list_objects_v2`` (paginated, in key order), ``get_object`` and ``put_object`` over buckets in memory."""

    exceptions = SimpleNamespace(NoSuchKey=NoSuchKey)

    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, Stored]] = {}

    def put(self, bucket: str, key: str, stored: Stored) -> None:
        self.buckets.setdefault(bucket, {})[key] = stored

    def get_paginator(self, name: str) -> Any:
        assert name == "list_objects_v2"
        return SimpleNamespace(paginate=self._paginate)

    def _paginate(self, Bucket: str, Prefix: str = "", StartAfter: str = "", **_: Any) -> Iterator[dict[str, Any]]:
        keys = sorted(key for key in self.buckets.get(Bucket, {}) if key.startswith(Prefix) and key > StartAfter)
        for start in range(0, max(len(keys), 1), 1000):
            page = keys[start : start + 1000]
            yield {
                "Contents": [
                    {
                        "Key": key,
                        "ETag": f'"{self.buckets[Bucket][key].etag}"',
                        "Size": len(self.buckets[Bucket][key].body),
                        "LastModified": self.buckets[Bucket][key].modified,
                    }
                    for key in page
                ]
            }

    def get_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        stored = self.buckets.get(Bucket, {}).get(Key)
        if stored is None:
            raise NoSuchKey(Key)
        return {
            "Body": io.BytesIO(stored.body),
            "ContentLength": len(stored.body),
            "ETag": f'"{stored.etag}"',
            "Metadata": dict(stored.metadata),
            "LastModified": stored.modified,
        }

    def list_buckets(self) -> dict[str, Any]:
        return {"Buckets": [{"Name": name, "CreationDate": START} for name in sorted(self.buckets)]}

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.put(Bucket, Key, Stored(Body, f"p{len(Body)}", datetime.now(UTC)))
        return {}


@dataclass
class Population:
    bucket: str
    prefix: str
    outcome_bucket: str
    now: datetime  # when the operator asks: images modified in the last hour are still waiting
    s3: MemoryS3
    rows: int = 0
    dead_letters: set[str] = field(default_factory=set)
    outcomes: int = 0  # documents written (the current ones and those replaced since)
    unsent: list[str] = field(default_factory=list)  # image keys whose current row never reached the stream


def _key(prefix: str, index: int) -> str:
    if index % 97 == 0:
        return f"{prefix}gen/odd/it's {index} café+50%_x.jpg"
    if index % 13 == 0:
        return f"{prefix}gen/sub/{index:05d}.png"
    return f"{prefix}gen/{index:05d}.jpg"


def _labels(rng: random.Random) -> list[Label]:
    return [
        Label(
            rng.choice(NAMES),
            round(rng.uniform(20.0, 100.0), 4),
            BoundingBox(round(rng.random() / 2, 6), round(rng.random() / 2, 6), 0.25, 0.25)
            if rng.random() < 0.7
            else None,
        )
        for _ in range(rng.randint(0, 4))
    ]


def _document(
    rng: random.Random, ref: ObjectRef, completed: datetime, thresholds: Thresholds, model: str, error: str | None
) -> dict[str, Any]:
    received = completed - timedelta(milliseconds=rng.randint(80, 4000))
    if error:
        return error_document(
            ref=ref,
            backend="rekognition",
            model_id=model,
            thresholds=thresholds,
            error=PermanentError(error, f"generated {error.lower()}"),
            received_at=received,
            completed_at=completed,
        )
    accepted, candidates, rejected = thresholds.split(_labels(rng))
    challenger: dict[str, Any] | None = None
    if rng.random() < 0.12:
        if rng.random() < 0.15:
            challenger = {"backend": "sagemaker", "model_id": "challenger", "status": "error", "error": {"code": "X"}}
        else:
            theirs, their_candidates, _ = thresholds.split(_labels(rng))
            challenger = {
                "backend": "sagemaker",
                "model_id": "challenger",
                "status": "ok",
                "labels": [{"name": x.name, "confidence": x.confidence, "bounding_box": None} for x in theirs],
                "candidates": [
                    {"name": x.name, "confidence": x.confidence, "bounding_box": None} for x in their_candidates
                ],
                "latency_ms": 12.5,
                "error": None,
            }
    return result_document(
        ref=ref,
        backend="rekognition",
        model_id=model,
        thresholds=thresholds,
        detection=Detection(
            tuple(accepted + candidates), ImageFacts("s3_object", "JPEG", 640, 480), rng.uniform(20, 900)
        ),
        accepted=accepted,
        candidates=candidates,
        rejected_count=rejected,
        received_at=received,
        completed_at=completed,
        challenger=challenger,
    )


def generate(
    count: int = 5200,
    *,
    bucket: str = "images",
    prefix: str = "test_images/",
    outcome_bucket: str = "outcomes",
    unsent_share: float = 0.0,
    seed: int = 31,
) -> Population:
    """``count`` images; ``unsent_share`` of the current documents never had their row reach the stream."""
    rng = random.Random(seed)
    s3 = MemoryS3()
    now = START + timedelta(days=DAYS, hours=1)
    population = Population(bucket, prefix, outcome_bucket, now, s3)
    rows: list[tuple[datetime, bytes]] = []

    def write(ref: ObjectRef, document: dict[str, Any], written: datetime, sent: bool = True) -> None:
        result_key = ref.key + ".json"
        s3.put(
            bucket,
            result_key,
            Stored(
                json.dumps(document).encode(),
                f"r{len(rows)}",
                written.replace(microsecond=0),
                {PRODUCER_METADATA: PRODUCER},
            ),
        )
        population.outcomes += 1
        if not sent:
            population.unsent.append(ref.key)
            return
        row = outcome_table.encode(outcome_table.row(document, written))
        rows.append((written, row))
        if rng.random() < 0.05:  # delivered again (a redelivered message sends its row again), later
            rows.append((written + timedelta(seconds=rng.randint(1, 900)), row))

    for index in range(count):
        key = _key(prefix, index)
        uploaded = START + timedelta(seconds=rng.randrange(0, DAYS * 86400 - 7200))  # S3 keeps whole seconds
        versions = 2 if rng.random() < 0.05 else 1
        roll = rng.random()
        for version in range(versions):
            ref = ObjectRef(bucket, key, f"v{version}", f"e{index}-{version}", 50_000, f"{index:08X}{version:02X}")
            moment = uploaded + timedelta(minutes=10 * version)
            image = Stored(b"\xff\xd8 image", ref.etag or "", moment.replace(microsecond=0))
            s3.put(bucket, key, image)
            last = version == versions - 1
            if last and roll < 0.03:  # no outcome at all: waiting (recent), in the dead-letter queue, or missing
                if rng.random() < 0.3:
                    s3.put(bucket, key, Stored(image.body, image.etag, now - timedelta(minutes=5)))
                elif rng.random() < 0.4:
                    population.dead_letters.add(key)
                if versions == 1:
                    break
                continue  # the first version's document stays: it answers an older upload
            completed = moment + timedelta(seconds=rng.uniform(0.2, 30))
            stale = rng.random()
            thresholds = OLDER_THRESHOLDS if stale < 0.1 else THRESHOLDS
            model = OLDER_MODEL if 0.1 <= stale < 0.15 else MODEL
            error = rng.choice(CODES) if rng.random() < 0.08 else None
            document = _document(rng, ref, completed, thresholds, model, error)
            written = completed + timedelta(milliseconds=rng.randint(5, 200))
            write(ref, document, written, sent=not (last and rng.random() < unsent_share))
            if last and roll > 0.98:  # a forced re-run of this version, an hour later
                rerun = ObjectRef(bucket, key, ref.version_id, ref.etag, ref.size, None, "reprocess-gen")
                again = _document(rng, rerun, completed + timedelta(hours=1), THRESHOLDS, MODEL, None)
                write(rerun, again, completed + timedelta(hours=1, milliseconds=30))
        if 0.03 <= roll < 0.04:  # uploaded again since: the document beside it answers the older upload
            s3.put(bucket, key, Stored(b"\xff\xd8 newer", f"e{index}-new", uploaded + timedelta(hours=2)))

    # Delivered in batches of up to 10 rows by arrival time, each batch's order shuffled (out-of-order delivery),
    # one object per batch as the emulated stream writes them (Firehose names objects by arrival hour).
    rows.sort(key=lambda item: item[0])
    for start in range(0, len(rows), 10):
        batch = rows[start : start + 10]
        rng.shuffle(batch)
        arrival = max(moment for moment, _ in batch)
        name = f"{ROWS_PREFIX}{arrival:%Y/%m/%d/%H}/outcomes-1-{arrival:%Y-%m-%d-%H-%M-%S}-{start:08d}"
        s3.put(outcome_bucket, name, Stored(b"".join(row for _, row in batch), f"o{start}", arrival))
    population.rows = len(rows)
    return population


def now_iso(population: Population) -> str:
    return iso(population.now)


def bucket_listing(population: Population) -> list[dict[str, Any]]:
    """The image bucket's listing, as the embedded stack's inventory takes it."""
    pages = population.s3.get_paginator("list_objects_v2").paginate(Bucket=population.bucket, Prefix=population.prefix)
    return [dict(item, bucket=population.bucket) for page in pages for item in page["Contents"]]
