"""CloudWatch's side of the function's telemetry, emulated: the embedded-metric-format (EMF) lines the function
logs become metrics, as CloudWatch Logs extracts them, and every invocation adds the AWS/Lambda
``Invocations`` and ``Duration`` Lambda publishes. So ``inferctl cost`` reads the same metrics on both targets."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

PUT_LIMIT = 1000  # metrics per PutMetricData


def emf_metrics(line: str) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, MetricDatum) for each metric an EMF line declares; [] for any other line."""
    if '"_aws"' not in line:
        return []
    try:
        record = json.loads(line)
        declared = record["_aws"]
        when = datetime.fromtimestamp(int(declared["Timestamp"]) / 1000, UTC)
        found = []
        for directive in declared["CloudWatchMetrics"]:
            dimension_sets = directive.get("Dimensions") or [[]]
            for metric in directive["Metrics"]:
                values = record.get(metric["Name"])
                values = values if isinstance(values, list) else [values]
                for names in dimension_sets:
                    dimensions = [{"Name": name, "Value": str(record[name])} for name in names]
                    for value in values:
                        datum = {
                            "MetricName": metric["Name"],
                            "Dimensions": dimensions,
                            "Timestamp": when,
                            "Value": float(value),
                            "Unit": metric.get("Unit", "None"),
                        }
                        found.append((str(directive["Namespace"]), datum))
        return found
    except (KeyError, TypeError, ValueError):
        return []  # not EMF after all: CloudWatch ignores it too


class Metrics:
    """Publishes to the emulator's CloudWatch what the real one would have from the function."""

    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch
        self._lock = threading.Lock()

    def from_log(self, lines: Iterable[str]) -> None:
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for line in lines:
            for namespace, datum in emf_metrics(line):
                by_namespace.setdefault(namespace, []).append(datum)
        for namespace, data in by_namespace.items():
            self._put(namespace, data)

    def invocation(self, function_name: str, duration_ms: float) -> None:
        dimensions = [{"Name": "FunctionName", "Value": function_name}]
        now = datetime.now(UTC)
        self._put(
            "AWS/Lambda",
            [
                {
                    "MetricName": "Invocations",
                    "Dimensions": dimensions,
                    "Timestamp": now,
                    "Value": 1.0,
                    "Unit": "Count",
                },
                {
                    "MetricName": "Duration",
                    "Dimensions": dimensions,
                    "Timestamp": now,
                    "Value": duration_ms,
                    "Unit": "Milliseconds",
                },
            ],
        )

    def _put(self, namespace: str, data: list[dict[str, Any]]) -> None:
        with self._lock:
            for start in range(0, len(data), PUT_LIMIT):
                self._cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start : start + PUT_LIMIT])
