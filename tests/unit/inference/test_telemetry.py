"""The function's telemetry costs less than Powertools' defaults and says the same."""

from __future__ import annotations

import json

import pytest

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
