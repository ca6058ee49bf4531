"""Validation rules shared by the CDK app (context keys) and the Lambda (environment variables).

Pure functions, no AWS and no third-party imports: the stack and the function agree on what a valid
setting is because they run the same code. Every error names the setting it is about.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

# Image types the pipeline accepts. JPEG and PNG go to Rekognition as they are; the others are converted
# with Pillow first. Matching is case-insensitive in the Lambda.
DEFAULT_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
RESULT_SUFFIX = ".json"
# The smallest memory size the stack accepts: the runtime (about 60 MB), the decode helper (about 20 MB) and the
# smallest budget fit (``lambdas/inference/images/budget.py``); at 128 MB they do not, and a decode could get the
# function killed.
SMALLEST_MEMORY_MB = 256

# arn:aws:rekognition:us-east-1:123456789012:project/name/version/name.2024-01-01T00.00.00/1700000000000
_REKOGNITION_MODEL_ARN = re.compile(
    r"^arn:aws(-[a-z]+)*:rekognition:[a-z]{2}(-[a-z]+)+-\d:\d{12}:"
    r"project/[a-zA-Z0-9_.\-]{1,255}/version/[a-zA-Z0-9_.\-]{1,255}/\d{13}$"
)
_REKOGNITION_PROJECT_NAME = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")
# SageMaker endpoint names: 1-63 characters, alphanumerics and hyphens, no leading hyphen.
_SAGEMAKER_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_SNS_TOPIC_ARN = re.compile(r"^arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,10}$")


class ConfigError(ValueError):
    """A setting is missing or invalid. The message starts with the setting's name."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.setting = name


def text(name: str, raw: Any) -> str:
    if not isinstance(raw, str):
        raise ConfigError(name, f"expected a string, got {type(raw).__name__} {raw!r}")
    return raw.strip()


def backend(name: str, raw: Any, registered: tuple[str, ...]) -> str:
    value = text(name, raw).lower()
    if value not in registered:
        raise ConfigError(name, f"unknown backend {raw!r}; expected one of {', '.join(registered)}")
    return value


def confidence(name: str, raw: Any) -> float:
    """A confidence threshold in percent, 0 to 100 inclusive."""
    return number(name, raw, 0.0, 100.0)


def integer(name: str, raw: Any, low: int, high: int) -> int:
    if isinstance(raw, bool):
        raise ConfigError(name, f"expected a whole number from {low} to {high}, got {raw!r}")
    try:
        value = int(str(raw).strip()) if not isinstance(raw, int) else raw
    except ValueError:
        raise ConfigError(name, f"expected a whole number from {low} to {high}, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(name, f"must be between {low} and {high}, got {value}")
    return value


def number(name: str, raw: Any, low: float, high: float) -> float:
    if isinstance(raw, bool):
        raise ConfigError(name, f"expected a number from {low:g} to {high:g}, got {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(name, f"expected a number from {low:g} to {high:g}, got {raw!r}") from None
    if math.isnan(value) or not low <= value <= high:
        raise ConfigError(name, f"must be between {low:g} and {high:g}, got {raw!r}")
    return value


def flag(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    value = text(name, raw).lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no", ""):
        return False
    raise ConfigError(name, f"expected true or false, got {raw!r}")


def input_prefix(name: str, raw: Any) -> str:
    value = text(name, raw)
    if not value or not value.endswith("/"):
        raise ConfigError(name, f"must be a non-empty key prefix ending in '/', got {raw!r}")
    if value.startswith("/"):
        raise ConfigError(name, f"S3 keys do not start with '/', got {raw!r}")
    if "*" in value or "?" in value:
        raise ConfigError(name, f"wildcards are not allowed in the prefix, got {raw!r}")
    return value


def matching(name: str, raw: Any, pattern: re.Pattern[str], expected: str) -> str:
    """``raw`` as text when ``pattern`` matches it; otherwise a ConfigError saying what was ``expected``."""
    value = text(name, raw)
    if not pattern.match(value):
        raise ConfigError(name, f"{expected}, got {raw!r}")
    return value


def rekognition_model_arn(name: str, raw: Any) -> str:
    return matching(
        name,
        raw,
        _REKOGNITION_MODEL_ARN,
        "expected a Rekognition Custom Labels model version ARN like "
        "arn:aws:rekognition:REGION:ACCOUNT:project/PROJECT/version/VERSION/TIMESTAMP",
    )


def rekognition_project_name(name: str, raw: Any) -> str:
    return matching(name, raw, _REKOGNITION_PROJECT_NAME, "expected 1-255 letters, digits, '_', '.' or '-'")


def sagemaker_endpoint_name(name: str, raw: Any) -> str:
    expected = "expected 1-63 letters, digits or hyphens (no leading hyphen)"
    return matching(name, raw, _SAGEMAKER_ENDPOINT_NAME, expected)


_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")


def stack_name(name: str, raw: Any) -> str:
    expected = "a CloudFormation stack name is a letter then letters, digits or '-'"
    return matching(name, raw, _STACK_NAME, expected)


def sns_topic_arn(name: str, raw: Any) -> str:
    expected = "expected an SNS topic ARN like arn:aws:sns:REGION:ACCOUNT:NAME"
    return matching(name, raw, _SNS_TOPIC_ARN, expected)


def one_of(name: str, raw: Any, choices: tuple[str, ...]) -> str:
    value = text(name, raw).lower()
    if value not in choices:
        raise ConfigError(name, f"expected one of {', '.join(choices)}, got {raw!r}")
    return value


def one_of_numbers(name: str, raw: Any, choices: tuple[int, ...]) -> int:
    value = integer(name, raw, min(choices), max(choices))
    if value not in choices:
        raise ConfigError(name, f"expected one of {', '.join(map(str, choices))}, got {raw!r}")
    return value


def _json_or_value(name: str, raw: Any) -> Any:
    if isinstance(raw, str):
        stripped = raw.strip()
        if stripped[:1] in ("{", "["):
            try:
                return json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise ConfigError(name, f"is not valid JSON ({exc.msg} at position {exc.pos})") from None
    return raw


def label_thresholds(name: str, raw: Any) -> dict[str, float]:
    """Per-label minimum confidence: a JSON object (or mapping) of label name to percent."""
    value = _json_or_value(name, raw)
    if value in ("", None):
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(name, f'expected a JSON object like {{"cat": 80}}, got {raw!r}')
    result: dict[str, float] = {}
    for label, threshold in value.items():
        if not isinstance(label, str) or not label:
            raise ConfigError(name, f"label names must be non-empty strings, got {label!r}")
        result[label] = confidence(f"{name}[{label!r}]", threshold)
    return result


def class_names(name: str, raw: Any) -> dict[int, str]:
    """Class index to name: a JSON list (index = position), a JSON object {"1": "cat"}, or 'a,b,c'."""
    value = _json_or_value(name, raw)
    if value in ("", None):
        return {}
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if isinstance(value, list | tuple):
        items = list(enumerate(value))
    elif isinstance(value, Mapping):
        try:
            items = [(int(k), v) for k, v in value.items()]
        except ValueError:
            raise ConfigError(name, "object keys must be class indices (whole numbers)") from None
    else:
        raise ConfigError(name, f"expected a JSON list or object of class names, got {raw!r}")
    result: dict[int, str] = {}
    for index, label in items:
        if not isinstance(label, str) or not label.strip():
            raise ConfigError(name, f"class {index} has no name ({label!r})")
        result[index] = label.strip()
    return result


def image_suffixes(name: str, raw: Any) -> tuple[str, ...]:
    value = _json_or_value(name, raw)
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(name, f"expected a non-empty list of suffixes like ['.jpg', '.png'], got {raw!r}")
    result: list[str] = []
    for suffix in value:
        if not isinstance(suffix, str) or not _SUFFIX.match(suffix):
            raise ConfigError(name, f"each suffix is a dot and 1-10 letters or digits, got {suffix!r}")
        if suffix.lower() == RESULT_SUFFIX:
            raise ConfigError(name, f"{RESULT_SUFFIX} is the result suffix and cannot be an input")
        if suffix.lower() not in result:
            result.append(suffix.lower())
    return tuple(result)
