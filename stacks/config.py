"""The deployment's configuration, from CDK context: one source for the CDK app and the embedded stack.

``StackConfig.from_context`` validates every key with the same rules the Lambda applies to its
environment (``lambdas/inference/rules.py``) and fails with the context key's name. It imports nothing from
CDK, so the embedded stack (``local/``) builds the same resources from the same values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdas.inference import rules
from lambdas.inference.rules import ConfigError

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922)
DLQ_RETENTION_DAYS = 14  # SQS maximum: the longest time operators get to inspect and redrive
# AWS: visibility timeout >= 6 x function timeout (+ batching window), so a batch that is retried inside one
# receive does not become visible to another poller while the first is still working.
VISIBILITY_TIMEOUT_FACTOR = 6
# Rekognition Custom Labels: about 5 transactions per second per inference unit (older AWS guidance).
# The stack assumes roughly one call per second per in-flight request when deriving maxConcurrency.
DEFAULT_TPS_PER_INFERENCE_UNIT = 5
SAGEMAKER_DEFAULT_MAX_CONCURRENCY = 10


def notification_suffixes(suffixes: tuple[str, ...]) -> list[str]:
    """S3 filter rules are case-sensitive: register the lower- and upper-case spelling of each suffix
    (cameras write ``.JPG``). A result ends in ``.json``, which never matches, so results start no work."""
    spelled: list[str] = []
    for suffix in suffixes:
        for variant in (suffix.lower(), suffix.upper()):
            if variant not in spelled:
                spelled.append(variant)
    return spelled


@dataclass(frozen=True)
class StackConfig:
    input_prefix: str = "test_images/"
    image_suffixes: tuple[str, ...] = rules.DEFAULT_IMAGE_SUFFIXES
    backend: str = "rekognition"
    rekognition_model_arn: str | None = None
    rekognition_project_name: str = "image-inference"
    inference_units: int = 1
    tps_per_inference_unit: int = DEFAULT_TPS_PER_INFERENCE_UNIT
    sagemaker_endpoint_name: str | None = None
    sagemaker_content_type: str = "image/jpeg"
    sagemaker_response_format: str = "auto"
    sagemaker_class_names: Mapping[int, str] = field(default_factory=dict)
    min_confidence: float = 50.0
    label_thresholds: Mapping[str, float] = field(default_factory=dict)
    max_receive_count: int = 5
    lambda_memory_mb: int = 1024
    lambda_timeout_seconds: int = 60
    batch_size: int = 10
    max_batching_window_seconds: int = 0
    record_concurrency: int = 10
    explicit_max_concurrency: int | None = None
    retry_max_attempts: int = 3
    log_retention_days: int = 30
    tracing: bool = True
    alarm_topic_arn: str | None = None
    allow_destroy: bool = False

    @property
    def visibility_timeout_seconds(self) -> int:
        return VISIBILITY_TIMEOUT_FACTOR * self.lambda_timeout_seconds + self.max_batching_window_seconds

    @property
    def max_concurrency(self) -> int:
        """Concurrent batches the SQS trigger may run (2-1000). Derived so that the stack does not throttle
        its own model: for Rekognition, inference units x TPS per unit, divided by the calls one batch
        makes at once."""
        if self.explicit_max_concurrency is not None:
            return self.explicit_max_concurrency
        if self.backend != "rekognition":
            return SAGEMAKER_DEFAULT_MAX_CONCURRENCY
        in_flight_per_batch = min(self.batch_size, self.record_concurrency)
        budget = self.inference_units * self.tps_per_inference_unit
        return max(2, min(1000, math.floor(budget / in_flight_per_batch)))

    @property
    def backend_read_timeout_seconds(self) -> int:
        """Per-attempt read timeout for model calls, so that every attempt (plus a 2 s connect each) fits in
        three quarters of the function's timeout; the rest is for reading the image and writing the result.
        A SageMaker container may take up to 60 s: raise lambdaTimeoutSeconds for models that slow."""
        budget = self.lambda_timeout_seconds * 3 // 4
        return max(1, budget // self.retry_max_attempts - 2)

    def lambda_environment(self) -> dict[str, str]:
        """The function's tunable environment (the names the Lambda's Settings read)."""
        env = {
            "BACKEND": self.backend,
            "INPUT_PREFIX": self.input_prefix,
            "IMAGE_SUFFIXES": ",".join(self.image_suffixes),
            "MIN_CONFIDENCE": f"{self.min_confidence:g}",
            "LABEL_THRESHOLDS": json.dumps(dict(self.label_thresholds), sort_keys=True),
            "RECORD_CONCURRENCY": str(self.record_concurrency),
            "SAGEMAKER_CONTENT_TYPE": self.sagemaker_content_type,
            "SAGEMAKER_RESPONSE_FORMAT": self.sagemaker_response_format,
            # Standard botocore variables: bounded retries that fit inside the function's timeout.
            "AWS_RETRY_MODE": "standard",
            "AWS_MAX_ATTEMPTS": str(self.retry_max_attempts),
            "BACKEND_READ_TIMEOUT_SECONDS": str(self.backend_read_timeout_seconds),
        }
        if not self.tracing:
            env["POWERTOOLS_TRACE_DISABLED"] = "true"  # and the X-Ray SDK is not even imported
        if self.rekognition_model_arn:
            env["REKOGNITION_MODEL_ARN"] = self.rekognition_model_arn
        if self.sagemaker_endpoint_name:
            env["SAGEMAKER_ENDPOINT_NAME"] = self.sagemaker_endpoint_name
        if self.sagemaker_class_names:
            env["SAGEMAKER_CLASS_NAMES"] = json.dumps(
                {str(k): v for k, v in sorted(self.sagemaker_class_names.items())}
            )
        return env

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> StackConfig:
        """Build from CDK context (``app.node.try_get_context``); ConfigError names the bad context key.

        Values given with ``-c key=value`` arrive as strings, values from cdk.json as JSON types; both work.
        """
        defaults = cls()

        def value(key: str, parse: Callable[[str, Any], Any], default: Any) -> Any:
            raw = get(key)
            if raw is None or raw == "":
                return default
            return parse(key, raw)

        def optional(key: str, parse: Callable[[str, Any], Any]) -> Any:
            return value(key, parse, None)

        def number(low: int, high: int) -> Callable[[str, Any], int]:
            return lambda key, raw: rules.integer(key, raw, low, high)

        timeout = value("lambdaTimeoutSeconds", number(1, 900), defaults.lambda_timeout_seconds)
        window = value("maxBatchingWindowSeconds", number(0, 300), defaults.max_batching_window_seconds)
        batch_size = value("batchSize", number(1, 10_000), defaults.batch_size)
        if batch_size > 10 and window == 0:
            raise ConfigError(
                "batchSize", "above 10 needs maxBatchingWindowSeconds of at least 1 (an SQS trigger rule)"
            )
        retention = value("logRetentionDays", number(1, 3653), defaults.log_retention_days)
        if retention not in LOG_RETENTION_DAYS:
            raise ConfigError("logRetentionDays", f"CloudWatch Logs accepts {LOG_RETENTION_DAYS}, got {retention}")
        config = cls(
            input_prefix=value("inputPrefix", rules.input_prefix, defaults.input_prefix),
            image_suffixes=value("imageSuffixes", rules.image_suffixes, defaults.image_suffixes),
            backend=value("backend", rules.backend, defaults.backend),
            rekognition_model_arn=optional("rekognitionModelArn", rules.rekognition_model_arn),
            rekognition_project_name=value(
                "rekognitionProjectName", rules.rekognition_project_name, defaults.rekognition_project_name
            ),
            inference_units=value("inferenceUnits", number(1, 1000), defaults.inference_units),
            tps_per_inference_unit=value("tpsPerInferenceUnit", number(1, 1000), defaults.tps_per_inference_unit),
            sagemaker_endpoint_name=optional("sagemakerEndpointName", rules.sagemaker_endpoint_name),
            sagemaker_content_type=value(
                "sagemakerContentType",
                lambda k, v: rules.one_of(k, v, rules.SAGEMAKER_CONTENT_TYPES),
                defaults.sagemaker_content_type,
            ),
            sagemaker_response_format=value(
                "sagemakerResponseFormat",
                lambda k, v: rules.one_of(k, v, rules.SAGEMAKER_RESPONSE_FORMATS),
                defaults.sagemaker_response_format,
            ),
            sagemaker_class_names=value("sagemakerClassNames", rules.class_names, {}),
            min_confidence=value("minConfidence", rules.confidence, defaults.min_confidence),
            label_thresholds=value("labelThresholds", rules.label_thresholds, {}),
            max_receive_count=value("maxReceiveCount", number(1, 1000), defaults.max_receive_count),
            lambda_memory_mb=value("lambdaMemoryMb", number(128, 10_240), defaults.lambda_memory_mb),
            lambda_timeout_seconds=timeout,
            batch_size=batch_size,
            max_batching_window_seconds=window,
            record_concurrency=value("recordConcurrency", number(1, 64), defaults.record_concurrency),
            explicit_max_concurrency=optional("maxConcurrency", number(2, 1000)),
            retry_max_attempts=value("retryMaxAttempts", number(1, 10), defaults.retry_max_attempts),
            log_retention_days=retention,
            tracing=value("tracing", rules.flag, defaults.tracing),
            alarm_topic_arn=optional("alarmTopicArn", rules.sns_topic_arn),
            allow_destroy=value("allowDestroy", rules.flag, defaults.allow_destroy),
        )
        if config.visibility_timeout_seconds > 43_200:
            raise ConfigError(
                "lambdaTimeoutSeconds", "6 x timeout + batching window exceeds SQS's 12-hour visibility limit"
            )
        return config

    @classmethod
    def from_cdk_json(cls, overrides: Mapping[str, Any] | None = None, path: Path = CDK_JSON) -> StackConfig:
        """The configuration ``cdk synth`` would use, read from cdk.json's context (plus overrides)."""
        context = cdk_json_context(path)
        context.update(overrides or {})
        return cls.from_context(context.get)


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """cdk.json's ``context``: defaults for ``python app.py`` and tests, where the CDK CLI does not pass it.
    Under the CLI, its context (cdk.json plus ``-c``) takes precedence over these."""
    context = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    return dict(context)
