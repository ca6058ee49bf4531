"""The function's log lines: Powertools' JSON lines, formatted with less work.

Every line is written as it is logged: a record's "Result written" line is out once its result is in S3, which is
what ``inferctl dlq`` and the kill tests rely on when an invocation is killed. Holding an invocation's lines and
writing them once was measured (a fifth of the handler's overhead per image on 2 cores) and not kept for that reason
(docs/decisions.md, 2026-12-03).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from aws_lambda_powertools.logging.formatter import RESERVED_LOG_ATTRS, LambdaPowertoolsFormatter, _get_context

_RESERVED = frozenset(RESERVED_LOG_ATTRS)


class LineFormatter(LambdaPowertoolsFormatter):
    """Powertools' formatter, the same lines (a test compares them), with its key filter on a set: Powertools tests
    each of a record's ~25 attributes against a 25-name tuple, about 40% of a line's formatting; and its default
    timestamp's date and time rendered once a second, not at every line; its JSON encoder built once."""

    _second: tuple[int, str, str] | None = None  # (the second, its text before the milliseconds, after them)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if options.get("json_serializer") is None:
            # json.dumps with these options, its encoder built once rather than at every line (a tenth of a line)
            self.json_serializer = json.JSONEncoder(
                default=self.json_default, separators=(",", ":"), indent=self.json_indent, ensure_ascii=False
            ).encode

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt or self.datefmt or self.use_rfc3339_iso8601:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached = self._second
        if cached is None or cached[0] != second:
            before, after = self.default_time_format.split(self.custom_ms_time_directive, 1)
            moment = self.converter(second)
            cached = self._second = (second, time.strftime(before, moment), time.strftime(after, moment))
        return f"{cached[1]}{int(record.msecs):03d}{cached[2]}"

    def _extract_log_keys(self, log_record: logging.LogRecord) -> dict[str, Any]:
        record_dict = log_record.__dict__.copy()
        record_dict["asctime"] = self.formatTime(record=log_record)
        formatted: dict[str, Any] = {}
        for keys in (self.log_format, _get_context().get()):
            for key, value in keys.items():
                if value and key in _RESERVED:
                    if not isinstance(value, str):
                        raise ValueError(
                            "Logging keys that override reserved log attributes need to be type 'str', "
                            f"instead got '{type(value).__name__}'",
                        )
                    formatted[key] = value % record_dict
                else:
                    formatted[key] = value
        formatted.update((key, value) for key, value in record_dict.items() if key not in _RESERVED)
        return formatted
