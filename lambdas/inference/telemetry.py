"""The function's Powertools objects (its logger, metrics and tracing) and the pipeline's telemetry on them:
counts and latencies as CloudWatch embedded-metric-format lines. One logger and one metrics store per process, as
Powertools keeps them; the handler decorates with them, the execution environment (``environment.py``) wires them
into the pipeline."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.constants import MAX_METRICS as EMF_MAX_VALUES

from lambdas.contract.settings import tracing_enabled
from lambdas.inference.log_format import LineFormatter
from lambdas.inference.tracing import make_tracing

# What can begin a JSON text for Python's json module (NaN and Infinity included), whitespace first allowed.
_JSON_STARTS = frozenset('{["-0123456789tfnNI \t\n\r')


def message_json(text: dict[Any, Any] | str | bool | int | float) -> Any:  # Powertools' declared type
    """Powertools' formatter reads every string message as JSON first (a JSON message is logged as an object) and
    keeps the string when that raises. A message that cannot begin JSON raises at once: the same line, without
    the parse attempt and its exception (about a tenth of a "Result written" line's cost, measured)."""
    if not isinstance(text, str) or text[:1] not in _JSON_STARTS:
        raise ValueError("not JSON")
    return json.loads(text)


logger = Logger(json_deserializer=message_json)
# Powertools' lines with less work (log_format.py), the formatter built as Powertools builds its own: with the same
# keys, which inject_lambda_context's clear_state returns to.
logger.registered_handler.setFormatter(LineFormatter(json_deserializer=message_json, **logger._default_log_keys))
tracing = make_tracing(tracing_enabled())
metrics = Metrics()


def metric_name(label: str) -> str:
    """A label as part of a CloudWatch metric name (letters, digits and ._- kept, the rest as _; 200 at most)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", label)[:200]


class PowertoolsTelemetry:
    """Pipeline counts and latencies as CloudWatch EMF metrics. Thread-safe: records run concurrently.

    Counts are summed in memory and reach the sink once per invocation (``flush``, which the handler calls before
    Powertools prints the batch's EMF line): one value per count metric a line, whose ``Sum`` (what every alarm,
    ``inferctl cost`` and ``inferctl drift`` read) is the same as per-image values would give; ``SampleCount``
    counts invocations. Latencies keep one value per image, for their percentiles."""

    def __init__(self, sink: Metrics) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._counts: dict[str, float] = {}
        self._latencies: list[tuple[str, float]] = []

    def _count(self, *names: str, value: float = 1) -> None:
        with self._lock:
            for name in names:
                self._counts[name] = self._counts.get(name, 0) + value

    def _latency(self, name: str, milliseconds: float) -> None:
        with self._lock:
            self._latencies.append((name, milliseconds))

    def outcome(self, status: str, code: str | None = None) -> None:
        names = {"ok": "ImagesProcessed", "error": "ImagesFailed", "retry": "ImagesRetried"}
        self._count(names.get(status, f"Messages_{status}"), *([f"Error_{code}"] if code else []))

    def detection(self, labels_found: int, latency_ms: float) -> None:
        self._count("LabelsFound", value=labels_found)
        self._latency("BackendLatency", latency_ms)

    def labels(self, accepted: list[str], near: list[str]) -> None:
        """Per label: images that accepted it, and images with a candidate just below its threshold (their share
        of ImagesProcessed is the drift signal `inferctl drift` and the NearThresholdShare alarm read)."""
        names = [f"Accepted_{metric_name(name)}" for name in accepted]
        names += [f"NearThreshold_{metric_name(name)}" for name in near]
        if near:
            names.append("NearThresholdImages")
        self._count(*names)

    def challenger(self, section: dict[str, Any]) -> None:
        if section.get("status") == "ok":
            self._count("ChallengerImages")
            self._latency("ChallengerLatency", float(section.get("latency_ms") or 0.0))
            return
        code = (section.get("error") or {}).get("code")
        self._count("ChallengerErrors", *([f"ChallengerError_{code}"] if code else []))

    def flush(self) -> None:
        """What was counted since the last flush, into the sink (Powertools prints it when the handler returns)."""
        with self._lock:
            counts, self._counts = self._counts, {}
            latencies, self._latencies = self._latencies, []
        for name, value in counts.items():
            self._sink.add_metric(name=name, unit=MetricUnit.Count, value=value)
        values: dict[str, list[float]] = {}
        for name, value in latencies:
            values.setdefault(name, []).append(value)
        for name, milliseconds in values.items():
            self._add_values(name, milliseconds)

    def _add_values(self, name: str, values: list[float]) -> None:
        """Each value into the metric as ``add_metric`` adds it, in one call a run: Powertools renders a debug line of
        the whole metric at every call (about 6 us each here; a batch's latencies cost 5 us an image). The first value
        goes through ``add_metric``, which checks the name and unit and creates the entry; so does every metric's
        100th, with which Powertools prints the line and starts another, as it does value by value."""
        left = values
        while left:
            self._sink.add_metric(name=name, unit=MetricUnit.Milliseconds, value=left[0])
            left = left[1:]
            entry = self._sink.metric_set.get(name)  # None when that value filled the line, which went out
            if entry is not None:
                room = max(0, EMF_MAX_VALUES - 1 - len(entry["Value"]))
                entry["Value"].extend(float(value) for value in left[:room])
                left = left[room:]
