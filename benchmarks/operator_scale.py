"""Row 9: the operator tools over 10,000 and 100,000 result documents.

S3 is a stand-in here (``ScaleS3``): a bucket of N images and N outcome documents, listed 1,000 keys a page in
30 ms and read in 15 ms a GET (what small objects take in one Region; ``benchmarks/latency.py`` has the
sources), documents generated on demand so the stand-in holds only its keys. Everything else (the function's
configuration, the queues) is the embedded stack's. Each tool runs as the CLI runs it and is measured for wall
time and for the memory it allocates (tracemalloc's peak over the run: flat when it streams).
"""

from __future__ import annotations

import io
import json
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from inferctl.emulator.stack import embedded_stack
from inferctl.evaluation import groundtruth, whatif
from inferctl.scenarios.demo.run import demo_config, demo_models
from inferctl.stack import audit, reprocess, scoring, uploads
from inferctl.stack.target import Target, from_outputs
from lambdas.contract.results import PRODUCER, PRODUCER_METADATA, SCHEMA_VERSION
from lambdas.contract.thresholds import Thresholds

LIST_MS, GET_MS = 30.0, 15.0
PAGE = 1000
EVALUATED = 1000  # the ground truth's images: a labelled sample, not the bucket


class NoSuchKey(Exception):
    pass


class ScaleS3:
    """list_objects_v2 (paginated) and get_object over N images and their documents, with S3's latencies."""

    exceptions = SimpleNamespace(NoSuchKey=NoSuchKey)

    def __init__(self, bucket: str, prefix: str, count: int) -> None:
        self.bucket, self.prefix, self.count = bucket, prefix, count
        self.modified = datetime(2026, 11, 1, tzinfo=UTC)

    def image_key(self, index: int) -> str:
        return f"{self.prefix}scale/{index:07d}.jpg"

    def keys(self) -> Iterator[str]:
        for index in range(self.count):  # in S3's order: each image, then its document
            key = self.image_key(index)
            yield key
            yield key + ".json"

    def get_paginator(self, name: str) -> Any:
        assert name == "list_objects_v2"
        return SimpleNamespace(paginate=self._paginate)

    def _paginate(self, Bucket: str, Prefix: str, StartAfter: str = "") -> Iterator[dict[str, Any]]:
        page: list[dict[str, Any]] = []
        for key in self.keys():
            if not key.startswith(Prefix) or key <= StartAfter:
                continue
            index = int(key.split("/")[-1][:7])
            page.append({"Key": key, "ETag": f'"e{index}"', "Size": 50_000, "LastModified": self.modified})
            if len(page) == PAGE:
                time.sleep(LIST_MS / 1000)
                yield {"Contents": page}
                page = []
        time.sleep(LIST_MS / 1000)
        yield {"Contents": page}

    def get_object(self, Bucket: str, Key: str, **kwargs: Any) -> dict[str, Any]:
        time.sleep(GET_MS / 1000)
        if not Key.endswith(".json"):
            raise NoSuchKey(Key)
        data = json.dumps(self.document(Key[: -len(".json")])).encode()
        return {
            "Body": io.BytesIO(data),
            "ContentLength": len(data),
            "ETag": '"r"',
            "Metadata": {PRODUCER_METADATA: PRODUCER},
        }

    def document(self, image_key: str) -> dict[str, Any]:
        index = int(image_key.split("/")[-1][:7])
        confidence = 40.0 + (index * 7919) % 60
        label = {"name": ("cat", "dog", "bee")[index % 3], "confidence": confidence, "bounding_box": None}
        accepted = confidence >= 50.0
        return {
            "schema_version": SCHEMA_VERSION,
            "producer": PRODUCER,
            "status": "ok",
            "source": {"bucket": self.bucket, "key": image_key, "version_id": None, "etag": f"e{index}"},
            "model": {"backend": "rekognition", "model_id": "demo", "response_format": None},
            "thresholds": {"min_confidence": 50.0, "label_overrides": {}, "candidate_floor": 10.0, "inclusive": True},
            "labels": [label] if accepted else [],
            "candidates": [] if accepted else [label],
            "rejected_label_count": 0 if accepted else 1,
            "timing": {"received_at": "2026-11-01T00:00:00.000Z", "completed_at": "2026-11-01T00:00:00.100Z"},
            "error": None,
        }


@dataclass(frozen=True)
class ScaleTarget(Target):
    s3: Any = None

    def client(self, service: str) -> Any:
        return self.s3 if service == "s3" else super().client(service)


def manifest(s3: ScaleS3, path: Path) -> Path:
    lines = []
    for index in range(0, s3.count, max(1, s3.count // EVALUATED)):
        key = s3.image_key(index)
        lines.append(groundtruth.detection_manifest_line(s3.bucket, key, (640, 480), [("cat", (10, 10, 100, 100))]))
    path.write_text("\n".join(lines[:EVALUATED]) + "\n")
    return path


def measured(run: Callable[[], Any]) -> dict[str, float]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        run()
    finally:
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {"seconds": seconds, "peak_mb": peak / 1e6}


def tool_runs(target: Target, truth: Path) -> dict[str, Callable[[], Any]]:
    """Each tool as its command runs it (output aside)."""
    proposed = Thresholds(min_confidence=60.0)
    return {
        "audit": lambda: audit.audit(target),
        "results": lambda: sum(1 for _ in uploads.iter_results(target)),
        "what-if": lambda: whatif.what_if(uploads.iter_results(target), proposed),
        "evaluate": lambda: scoring.run(target, truth),
        "reprocess": lambda: reprocess.reprocess(target, reprocess.Selection(stale=True), dry_run=True),
    }


def measure(counts: tuple[int, ...] = (10_000, 100_000)) -> dict[str, Any]:
    """Each tool over each count, after one unmeasured pass over a few hundred (imports, clients, caches)."""
    tools: dict[str, dict[str, Any]] = {}
    config = demo_config({"backend": "rekognition"})
    with tempfile.TemporaryDirectory() as folder, embedded_stack(config, demo_models(), start_trigger=False) as stack:
        embedded = from_outputs(stack.session, stack.state(), None, "embedded")
        fields = {name: getattr(embedded, name) for name in Target.__dataclass_fields__}
        for count in (300, *counts):
            s3 = ScaleS3(embedded.bucket, embedded.input_prefix, count)
            target = ScaleTarget(**fields, s3=s3)
            truth = manifest(s3, Path(folder) / f"truth-{count}.manifest")
            runs = tool_runs(target, truth)
            for tool, run in runs.items():
                if count == 300:
                    run()  # warm-up, not reported
                    continue
                result = measured(run)
                result["seconds_per_10k"] = result["seconds"] * 10_000 / count
                tools.setdefault(tool, {})[str(count)] = result
    return {"list_ms": LIST_MS, "get_ms": GET_MS, "tools": tools}


def rows(scale: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    out = []
    for tool, by_count in scale["tools"].items():
        cells = []
        peaks = []
        for count, result in by_count.items():
            cells.append(
                f"{int(count):,}: {result['seconds']:.0f} s ({result['seconds_per_10k']:.1f} s/10k), "
                f"peak {result['peak_mb']:.1f} MB"
            )
            peaks.append(result["peak_mb"])
        flat = len(peaks) < 2 or peaks[-1] <= max(2 * peaks[0], peaks[0] + 20)
        out.append(
            (f"9 {tool} over stored results", "; ".join(cells), "memory flat (streamed)", "met" if flat else "MISSED")
        )
    return out
