"""The function's Powertools objects (its logger, metrics and tracing) and the pipeline's telemetry on them:
counts and latencies as CloudWatch embedded-metric-format lines. One logger and one metrics store per process, as
Powertools keeps them; the handler decorates with them, the execution environment (``environment.py``) wires them
into the pipeline."""

from __future__ import annotations

import re
import threading
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.contract.settings import tracing_enabled
from lambdas.inference.tracing import make_tracing

logger = Logger()
tracing = make_tracing(tracing_enabled())
metrics = Metrics()


def metric_name(label: str) -> str:
    """A label as part of a CloudWatch metric name (letters, digits and ._- kept, the rest as _; 200 at most)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", label)[:200]


class PowertoolsTelemetry:
    """Pipeline counts and latencies as CloudWatch EMF metrics. Thread-safe: records run concurrently."""

    def __init__(self, sink: Metrics) -> None:
        self._sink = sink
        self._lock = threading.Lock()

    def outcome(self, status: str, code: str | None = None) -> None:
        names = {"ok": "ImagesProcessed", "error": "ImagesFailed", "retry": "ImagesRetried"}
        with self._lock:
            self._sink.add_metric(name=names.get(status, f"Messages_{status}"), unit=MetricUnit.Count, value=1)
            if code:
                self._sink.add_metric(name=f"Error_{code}", unit=MetricUnit.Count, value=1)

    def detection(self, labels_found: int, latency_ms: float) -> None:
        with self._lock:
            self._sink.add_metric(name="LabelsFound", unit=MetricUnit.Count, value=labels_found)
            self._sink.add_metric(name="BackendLatency", unit=MetricUnit.Milliseconds, value=latency_ms)

    def labels(self, accepted: list[str], near: list[str]) -> None:
        """Per label: images that accepted it, and images with a candidate just below its threshold (their share
        of ImagesProcessed is the drift signal `inferctl drift` and the NearThresholdShare alarm read)."""
        with self._lock:
            for name in accepted:
                self._sink.add_metric(name=f"Accepted_{metric_name(name)}", unit=MetricUnit.Count, value=1)
            for name in near:
                self._sink.add_metric(name=f"NearThreshold_{metric_name(name)}", unit=MetricUnit.Count, value=1)
            if near:
                self._sink.add_metric(name="NearThresholdImages", unit=MetricUnit.Count, value=1)

    def challenger(self, section: dict[str, Any]) -> None:
        with self._lock:
            if section.get("status") == "ok":
                self._sink.add_metric(name="ChallengerImages", unit=MetricUnit.Count, value=1)
                latency = float(section.get("latency_ms") or 0.0)
                self._sink.add_metric(name="ChallengerLatency", unit=MetricUnit.Milliseconds, value=latency)
            else:
                self._sink.add_metric(name="ChallengerErrors", unit=MetricUnit.Count, value=1)
                code = (section.get("error") or {}).get("code")
                if code:
                    self._sink.add_metric(name=f"ChallengerError_{code}", unit=MetricUnit.Count, value=1)
