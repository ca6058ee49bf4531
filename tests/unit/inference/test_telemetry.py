"""The function's telemetry costs less than Powertools' defaults and says the same."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.inference import telemetry
from lambdas.inference.log_format import LineFormatter
from lambdas.inference.telemetry import message_json

MESSAGES = [
    "Result written",
    "Object skipped",
    "",
    '{"a": 1}',
    ' {"a": 1}',
    "\n[1, 2]",
    "[1, 2]",
    "123",
    "-5",
    "true",
    "false",
    "null",
    "NaN",
    "Infinity",
    '"quoted"',
    "x{",
    "nothing here",
    "Transient failure; the message will be retried",
]


NOT_JSON = object()


def as_read(parse, message):  # what a parser makes of the message
    try:
        return parse(message)
    except ValueError:
        return NOT_JSON


@pytest.mark.parametrize("message", MESSAGES)
def test_a_message_is_json_exactly_when_the_json_module_says_so(message):
    # Powertools' formatter keeps the string when its deserializer raises, and logs the object otherwise
    expected, got = as_read(json.loads, message), as_read(message_json, message)
    assert (got is NOT_JSON) == (expected is NOT_JSON)
    if expected is not NOT_JSON:
        assert json.dumps(got) == json.dumps(expected)


# --- the formatter: Powertools' lines, byte for byte ------------------------------------------------------------


def powertools_formatter() -> LambdaPowertoolsFormatter:
    """The formatter Powertools builds for ``Logger(json_deserializer=message_json)`` with no formatter given."""
    return LambdaPowertoolsFormatter(json_deserializer=message_json, **telemetry.logger._default_log_keys)


def a_record(message: Any, level: int = logging.INFO, args: tuple[Any, ...] = (), **extra: Any) -> logging.LogRecord:
    exc_info = None
    if extra.pop("failing", False):
        try:
            raise KeyError("gone")
        except KeyError:
            exc_info = sys.exc_info()
    record = logging.getLogger("image-inference").makeRecord(
        "image-inference", level, "/var/task/pipeline.py", 349, message, args, exc_info, "_detect_and_write", extra
    )
    record.created, record.msecs = 1764770000.123456, 123.456  # one moment for both formatters
    return record


RECORDS = [
    lambda: a_record("Result written", object_key="test_images/a.jpg", labels=["cat"], record_ms=2.5, sent_as="bytes"),
    lambda: a_record("Object skipped", reason="not an image", version_id=None),
    lambda: a_record({"as": "dict"}, logging.WARNING),
    lambda: a_record('{"a": [1, 2]}'),
    lambda: a_record("%s of %d", logging.INFO, ("three", 3)),
    lambda: a_record("Unexpected error", logging.ERROR, failing=True, error_code="Internal"),
    lambda: a_record("A key named like a record attribute", exception="mine", exception_name="Mine"),
    lambda: a_record("Non-ASCII ключ", key="test_images/ünïcode ✓.png"),
    lambda: a_record("Not JSON by itself", when=datetime(2026, 12, 3, tzinfo=UTC), tags={"one"}),  # default=str
]


def test_the_functions_formatter_writes_powertools_lines_byte_for_byte():
    ours = LineFormatter(json_deserializer=message_json, **telemetry.logger._default_log_keys)
    theirs = powertools_formatter()
    states = [
        lambda f: None,
        lambda f: f.append_keys(cold_start=True, function_request_id="req-1", xray_trace_id=None),
        lambda f: f.append_keys(location="%(module)s.%(funcName)s"),  # a reserved attribute as a format
        lambda f: f.thread_safe_append_keys(message_id="m-7"),
        lambda f: f.clear_state(),  # what inject_lambda_context(clear_state=True) does each invocation
        lambda f: f.remove_keys(["service"]),
    ]
    compared = 0
    try:
        for change in states:
            change(ours)
            change(theirs)
            for make in RECORDS:
                record = make()
                assert ours.format(record) == theirs.format(record)
                compared += 1
    finally:
        ours.thread_safe_clear_keys()
    assert compared == len(states) * len(RECORDS)


@pytest.mark.parametrize("utc", [True, False], ids=["utc", "local"])
def test_the_functions_timestamps_are_powertools_timestamps_across_seconds(utc: bool):
    """The date and time are rendered once a second: lines in one second, the next, an hour later and back again
    each carry Powertools' own timestamp (it fails when the cached second outlives its second)."""
    ours = LineFormatter(json_deserializer=message_json, utc=utc, **telemetry.logger._default_log_keys)
    theirs = LambdaPowertoolsFormatter(json_deserializer=message_json, utc=utc, **telemetry.logger._default_log_keys)
    base = 1764770000.0
    for offset in (0.0, 0.0004, 0.5, 0.9999, 1.0, 1.001, 3600.25, 0.75, 86399.999):
        record = a_record("Result written")
        record.created = base + offset
        record.msecs = (record.created - int(record.created)) * 1000
        assert ours.formatTime(record) == theirs.formatTime(record)
        assert ours.format(record) == theirs.format(record)
    iso = LineFormatter(json_deserializer=message_json, use_rfc3339=True, **telemetry.logger._default_log_keys)
    record = a_record("Result written")
    assert iso.formatTime(record) == LambdaPowertoolsFormatter(use_rfc3339=True).formatTime(record)


def test_the_functions_logger_uses_that_formatter_and_its_keys_survive_clear_state():
    formatter = telemetry.logger.registered_formatter
    assert isinstance(formatter, LineFormatter)
    record = RECORDS[0]()
    formatter.clear_state()
    assert formatter.format(record) == powertools_formatter().format(record)
    assert json.loads(formatter.format(record))["service"] == telemetry.logger.service


def emf_lines(record: Any) -> list[dict[str, Any]]:
    """The EMF lines Powertools prints while ``record(metrics)`` adds metrics and when they are flushed, without
    their timestamps."""
    sink = Metrics(namespace="TelemetryTest", service="image-inference")
    sink.clear_metrics()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        record(sink)
        sink.flush_metrics()
    lines = [json.loads(line) for line in printed.getvalue().splitlines()]
    for line in lines:
        line["_aws"].pop("Timestamp")
    return lines


def values_by_metric(lines: list[dict[str, Any]]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for line in lines:
        for definition in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            value = line[definition["Name"]]
            found.setdefault(definition["Name"], []).extend(value if isinstance(value, list) else [value])
    return found


@pytest.mark.parametrize("images", [1, 10, 99, 100, 101, 250])
def test_a_batchs_latencies_reach_cloudwatch_as_one_add_metric_per_value_would_put_them(images: int):
    """Values added a run at a time print what adding them one by one prints: the same line up to 99 a metric;
    beyond, every value in lines of at most 100 a metric (Powertools starts a new line at the 100th)."""
    latencies = [(("BackendLatency", "ChallengerLatency")[n % 3 == 2], n * 1.25) for n in range(images)]

    def ours(sink: Metrics) -> None:
        pipeline = telemetry.PowertoolsTelemetry(sink)
        for name, milliseconds in latencies:
            pipeline._latency(name, milliseconds)
        pipeline.outcome("ok")
        pipeline.flush()

    def one_by_one(sink: Metrics) -> None:
        sink.add_metric(name="ImagesProcessed", unit=MetricUnit.Count, value=1)
        for name, milliseconds in latencies:
            sink.add_metric(name=name, unit=MetricUnit.Milliseconds, value=milliseconds)

    mine, theirs = emf_lines(ours), emf_lines(one_by_one)
    assert values_by_metric(mine) == values_by_metric(theirs)
    for line in mine:
        assert all(len(value) <= 100 for value in line.values() if isinstance(value, list))
    if images < 100:
        assert mine == theirs
