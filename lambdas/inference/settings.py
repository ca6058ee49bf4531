"""The Lambda's configuration: the only reader of ``os.environ`` in the function.

Read and validated once per cold start (``Settings.from_env``); an invalid value raises ``ConfigError``
naming the variable. Operators change behaviour by changing these variables, not code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import rules
from .rules import ConfigError


@dataclass(frozen=True)
class Settings:
    backend: str
    input_prefix: str
    min_confidence: float
    label_thresholds: Mapping[str, float] = field(default_factory=dict)
    image_suffixes: tuple[str, ...] = rules.DEFAULT_IMAGE_SUFFIXES
    rekognition_model_arn: str | None = None
    sagemaker_endpoint_name: str | None = None
    sagemaker_content_type: str = "image/jpeg"
    sagemaker_response_format: str = "auto"
    sagemaker_class_names: Mapping[int, str] = field(default_factory=dict)
    sagemaker_max_image_side: int = 2048
    result_kms_key_arn: str | None = None
    record_concurrency: int = 10
    backend_read_timeout_seconds: int = 30

    @property
    def model_id(self) -> str:
        """The identifier of the configured model: a Rekognition model ARN or a SageMaker endpoint name."""
        model = self.rekognition_model_arn if self.backend == "rekognition" else self.sagemaker_endpoint_name
        assert model is not None  # from_env guarantees it
        return model

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables; raise ConfigError naming the first bad variable."""
        env = os.environ if environ is None else environ

        def get(name: str, default: str | None = None) -> str | None:
            value = env.get(name, default)
            return value if value is None or value.strip() else default

        backend = rules.backend("BACKEND", get("BACKEND", "rekognition"))
        model_arn = get("REKOGNITION_MODEL_ARN")
        endpoint = get("SAGEMAKER_ENDPOINT_NAME")
        if backend == "rekognition" and model_arn is None:
            raise ConfigError(
                "REKOGNITION_MODEL_ARN",
                "is not set; BACKEND=rekognition needs the model version ARN "
                "(redeploy with -c rekognitionModelArn=... or set the variable on the function)",
            )
        if backend == "sagemaker" and endpoint is None:
            raise ConfigError(
                "SAGEMAKER_ENDPOINT_NAME",
                "is not set; BACKEND=sagemaker needs the endpoint name "
                "(redeploy with -c sagemakerEndpointName=... or set the variable on the function)",
            )
        kms_key = get("RESULT_KMS_KEY_ARN")
        return cls(
            backend=backend,
            input_prefix=rules.input_prefix("INPUT_PREFIX", get("INPUT_PREFIX", "test_images/")),
            min_confidence=rules.confidence("MIN_CONFIDENCE", get("MIN_CONFIDENCE", "50")),
            label_thresholds=rules.label_thresholds("LABEL_THRESHOLDS", get("LABEL_THRESHOLDS", "{}")),
            image_suffixes=rules.image_suffixes(
                "IMAGE_SUFFIXES", get("IMAGE_SUFFIXES", ",".join(rules.DEFAULT_IMAGE_SUFFIXES))
            ),
            rekognition_model_arn=(
                rules.rekognition_model_arn("REKOGNITION_MODEL_ARN", model_arn) if model_arn else None
            ),
            sagemaker_endpoint_name=(
                rules.sagemaker_endpoint_name("SAGEMAKER_ENDPOINT_NAME", endpoint) if endpoint else None
            ),
            sagemaker_content_type=rules.one_of(
                "SAGEMAKER_CONTENT_TYPE", get("SAGEMAKER_CONTENT_TYPE", "image/jpeg"), rules.SAGEMAKER_CONTENT_TYPES
            ),
            sagemaker_response_format=rules.one_of(
                "SAGEMAKER_RESPONSE_FORMAT",
                get("SAGEMAKER_RESPONSE_FORMAT", "auto"),
                rules.SAGEMAKER_RESPONSE_FORMATS,
            ),
            sagemaker_class_names=rules.class_names("SAGEMAKER_CLASS_NAMES", get("SAGEMAKER_CLASS_NAMES", "")),
            sagemaker_max_image_side=rules.integer(
                "SAGEMAKER_MAX_IMAGE_SIDE", get("SAGEMAKER_MAX_IMAGE_SIDE", "2048"), 64, 8192
            ),
            result_kms_key_arn=rules.text("RESULT_KMS_KEY_ARN", kms_key) if kms_key else None,
            record_concurrency=rules.integer("RECORD_CONCURRENCY", get("RECORD_CONCURRENCY", "10"), 1, 64),
            backend_read_timeout_seconds=rules.integer(
                "BACKEND_READ_TIMEOUT_SECONDS", get("BACKEND_READ_TIMEOUT_SECONDS", "30"), 1, 900
            ),
        )


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Powertools' own switch: ``POWERTOOLS_TRACE_DISABLED=true`` turns tracing (and the X-Ray SDK) off."""
    env = os.environ if environ is None else environ
    return env.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() not in ("true", "1", "yes")
