"""The function's environment, defined once: the only reader of ``os.environ`` in the function.

``COMMON`` lists the function's own variables and each backend module lists its backend's (``variables.py``
says what a variable is). The same definitions build the environment from CDK context (the stack and the
embedded stack), read it back at cold start (the Lambda), and show or change it (the operator tool).
Read and validated once per cold start (``Settings.from_env``); a ConfigError names the variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from lambdas.contract import backends, rules
from lambdas.contract.backends.spec import DEFAULT_MAX_LABELS, DEFAULT_MAX_RESPONSE_BYTES
from lambdas.contract.thresholds import Thresholds
from lambdas.contract.variables import (
    Variable,
    read_all,
    render_env,
    render_json,
    render_list,
    render_number,
    require,
)


def _integer(low: int, high: int) -> Callable[[str, Any], int]:
    return lambda name, raw: rules.integer(name, raw, low, high)


COMMON: tuple[Variable, ...] = (
    Variable(
        "backend",
        "BACKEND",
        "backend",
        lambda name, raw: rules.backend(name, raw, backends.REGISTERED),
        "rekognition",
        doc=f"which model service: {', '.join(backends.REGISTERED)}",
    ),
    Variable(
        "input_prefix",
        "INPUT_PREFIX",
        "inputPrefix",
        rules.input_prefix,
        "test_images/",
        doc="key prefix that triggers inference; must end in /",
    ),
    Variable(
        "image_suffixes",
        "IMAGE_SUFFIXES",
        "imageSuffixes",
        rules.image_suffixes,
        rules.DEFAULT_IMAGE_SUFFIXES,
        render=render_list,
        doc="suffixes that are images (any letter case)",
    ),
    Variable(
        "min_confidence",
        "MIN_CONFIDENCE",
        "minConfidence",
        rules.confidence,
        50.0,
        render=render_number,
        live=True,
        doc="global threshold, percent 0-100",
    ),
    Variable(
        "label_thresholds",
        "LABEL_THRESHOLDS",
        "labelThresholds",
        rules.label_thresholds,
        {},
        render=render_json,
        live=True,
        doc='per-label thresholds, e.g. {"cat": 90}',
    ),
    Variable(
        "candidate_floor",
        "CANDIDATE_FLOOR",
        "candidateFloor",
        rules.confidence,
        10.0,
        render=render_number,
        live=True,
        doc="labels below their threshold down to this confidence are kept as candidates (percent)",
    ),
    Variable(
        "record_concurrency",
        "RECORD_CONCURRENCY",
        "recordConcurrency",
        _integer(1, 64),
        10,
        doc="records of one batch processed at once",
    ),
    Variable("result_kms_key_arn", "RESULT_KMS_KEY_ARN", None, rules.text, doc="the key results are written with"),
    Variable(
        "memory_mb",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        None,
        _integer(128, 10_240),
        1024,
        written=False,
        doc="set by Lambda: the function's memory, from which the decode budget derives",
    ),
    Variable(
        "storage_read_timeout_seconds",
        "STORAGE_READ_TIMEOUT_SECONDS",
        None,
        _integer(1, 900),
        5,
        doc="per-attempt read timeout of S3 calls (derived: all attempts fit in a quarter of the function timeout)",
    ),
    Variable(
        "model_calls_per_second",
        "MODEL_CALLS_PER_SECOND",
        None,
        lambda name, raw: rules.number(name, raw, 0.01, 100_000.0),
        render=render_number,
        doc="model calls per second one execution environment makes at most (derived: capacity / maxConcurrency)",
    ),
    Variable(
        "retry_delay_max_seconds",
        "RETRY_DELAY_MAX_SECONDS",
        "retryDelayMaxSeconds",
        _integer(1, 43_200),
        900,
        doc="longest back-off of a retried record (at most the queue's visibility timeout; default 15 minutes)",
    ),
    Variable(
        "queue_url", "QUEUE_URL", None, rules.text, doc="the queue, for the visibility back-off of retried records"
    ),
    Variable(
        "outcome_stream_name",
        "OUTCOME_STREAM_NAME",
        None,
        rules.text,
        doc="the Firehose stream every outcome's row goes to (the outcome table); none: no rows",
    ),
    Variable(
        "backend_read_timeout_seconds",
        "BACKEND_READ_TIMEOUT_SECONDS",
        None,
        _integer(1, 900),
        30,
        doc="per-attempt read timeout of model calls (derived from the function timeout)",
    ),
    Variable(
        "backend_call_timeout_seconds",
        "BACKEND_CALL_TIMEOUT_SECONDS",
        None,
        _integer(1, 900),
        45,
        doc="bound on a whole model call, every attempt and every read (derived: 3/4 of the function timeout)",
    ),
    Variable(
        "max_labels_per_image",
        "MAX_LABELS_PER_IMAGE",
        "maxLabelsPerImage",
        _integer(1, 10_000),
        DEFAULT_MAX_LABELS,
        doc="labels kept per image at most, the most confident (accepted first, then candidates)",
    ),
    Variable(
        "model_response_max_bytes",
        "MODEL_RESPONSE_MAX_BYTES",
        "maxModelResponseBytes",
        _integer(1024, 100 * 1024 * 1024),
        DEFAULT_MAX_RESPONSE_BYTES,
        doc="a model answer larger than this is MODEL_OUTPUT_TOO_LARGE, never parsed",
    ),
)

# Set by the stack for the libraries the function uses (names defined here once).
POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
POWERTOOLS_LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"
POWERTOOLS_TRACE_DISABLED = "POWERTOOLS_TRACE_DISABLED"
MALLOC_MMAP_THRESHOLD = "MALLOC_MMAP_THRESHOLD_"
SERVICE_NAME = "image-inference"
METRICS_NAMESPACE = "ImageInference"


def platform_environment(*, tracing: bool, max_attempts: int, log_level: str = "INFO") -> dict[str, str]:
    """Powertools and botocore settings: the standard variables, so operators retune them like any boto3 or
    Powertools program."""
    env = {
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: log_level,
        # Bounded retries that fit inside the function's timeout (see StackConfig.backend_read_timeout_seconds).
        "AWS_RETRY_MODE": "standard",
        "AWS_MAX_ATTEMPTS": str(max_attempts),
        # glibc: blocks of 128 KB and more are always mmap'd and given back when freed. Without it the
        # threshold grows after the first large free and each thread's arena keeps the 16 MB blocks Pillow
        # decoded into: ten records decoding one after another held 3.4 GB instead of 0.4 GB (make bench).
        MALLOC_MMAP_THRESHOLD: str(128 * 1024),
    }
    if not tracing:
        env[POWERTOOLS_TRACE_DISABLED] = "true"  # and the X-Ray SDK is not even imported
    return env


# --- a challenger model in shadow: its own switch and rate, and its backend's settings, prefixed ----------------

ENV_PREFIX, CONTEXT_PREFIX = "CHALLENGER_", "challenger"


def _backend_or_off(name: str, raw: Any) -> str | None:
    value = rules.text(name, raw).lower()
    if value in ("", "none", "off"):
        return None
    return rules.backend(name, value, backends.REGISTERED)


BACKEND = Variable(
    "backend",
    "CHALLENGER_BACKEND",
    "challengerBackend",
    _backend_or_off,
    None,
    doc=f"a second model in shadow: {', '.join(backends.REGISTERED)} (unset: none)",
)
SAMPLE_PERCENT = Variable(
    "sample_percent",
    "CHALLENGER_SAMPLE_PERCENT",
    "challengerSamplePercent",
    rules.confidence,
    100.0,
    render=render_number,
    doc="percent of images the challenger also sees (deterministic per object version)",
)
OWN = (BACKEND, SAMPLE_PERCENT)


def model_variables(backend: str) -> tuple[Variable, ...]:
    """The challenger's model settings: its backend's variables, prefixed (``CHALLENGER_REKOGNITION_MODEL_ARN``,
    ``challengerRekognitionModelArn``...)."""
    return tuple(variable.prefixed(ENV_PREFIX, CONTEXT_PREFIX) for variable in backends.spec(backend).variables)


def all_variables() -> tuple[Variable, ...]:
    return OWN + tuple(variable for name in backends.REGISTERED for variable in model_variables(name))


class ChallengerSettings(NamedTuple):
    backend: str | None = None
    sample_percent: float = 100.0
    model: Any = None  # the challenger backend's settings

    @property
    def enabled(self) -> bool:
        return self.backend is not None and self.model is not None and self.model.model_id is not None

    @property
    def model_id(self) -> str | None:
        return None if self.model is None else self.model.model_id

    @property
    def spec(self) -> backends.BackendSpec:
        assert self.backend is not None
        return backends.spec(self.backend)

    @classmethod
    def read(cls, get: Callable[[Variable], Any], by: str) -> ChallengerSettings:
        own = read_all(OWN, get, by)
        backend = own["backend"]
        if backend is None:
            return cls(None, own["sample_percent"], None)
        values = read_all(model_variables(backend), get, by)
        model = backends.spec(backend).settings(values)
        field = backends.spec(backend).model_variable.field
        variable = next(v for v in model_variables(backend) if v.field == field)
        require(model.model_id, variable, by, f"a {backend} challenger needs its model")
        return cls(backend, own["sample_percent"], model)

    def to_env(self) -> dict[str, str]:
        if self.backend is None:
            return {}
        return {**render_env(OWN, self), **render_env(model_variables(self.backend), self.model)}


class Settings(NamedTuple):
    backend: str
    input_prefix: str
    image_suffixes: tuple[str, ...]
    min_confidence: float
    label_thresholds: Mapping[str, float]
    candidate_floor: float
    record_concurrency: int
    result_kms_key_arn: str | None
    memory_mb: int
    storage_read_timeout_seconds: int
    model_calls_per_second: float | None
    retry_delay_max_seconds: int
    queue_url: str | None
    outcome_stream_name: str | None
    backend_read_timeout_seconds: int
    backend_call_timeout_seconds: int
    max_labels_per_image: int
    model_response_max_bytes: int
    model: Any  # the backend's own settings (its spec's settings_type)
    challenger: ChallengerSettings = ChallengerSettings()

    @property
    def spec(self) -> backends.BackendSpec:
        return backends.spec(self.backend)

    @property
    def thresholds(self) -> Thresholds:
        """The thresholds in force: the global minimum, the per-label overrides, the candidate floor."""
        return Thresholds(self.min_confidence, self.label_thresholds, self.candidate_floor)

    @property
    def model_id(self) -> str | None:
        """The configured model: a Rekognition model ARN, a SageMaker endpoint name... None until set."""
        model_id: str | None = self.model.model_id
        return model_id

    def require_model(self) -> str:
        """The model id; ConfigError naming the backend's model variable when it is not set."""
        variable = self.spec.model_variable
        model_id: str = require(
            self.model_id,
            variable,
            "env",
            f"BACKEND={self.backend} needs it (redeploy with -c {variable.context}=... or set the variable on the "
            "function)",
        )
        return model_id

    @staticmethod
    def variables(backend: str) -> tuple[Variable, ...]:
        """Every variable of a function configured with this backend."""
        return COMMON + backends.spec(backend).variables

    @classmethod
    def read(cls, get: Callable[[Variable], Any], by: str) -> Settings:
        """Parse each variable from ``get``; ``by`` ("env" or "context") is what errors name."""
        common = read_all(COMMON, get, by)
        spec = backends.spec(common["backend"])
        return cls(
            **common,
            model=spec.settings(read_all(spec.variables, get, by)),
            challenger=ChallengerSettings.read(get, by),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from environment variables; ConfigError names the first bad variable."""
        env = os.environ if environ is None else environ
        return cls.read(lambda variable: env.get(variable.env) if variable.env else None, "env")

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> Settings:
        """Settings from CDK context (cdk.json or ``-c key=value``); ConfigError names the context key.
        Every registered backend's keys are validated, not only the configured one's: a typo in a key
        prepared for a later switch fails now, not on the day of the switch."""

        def lookup(variable: Variable) -> Any:
            return get(variable.context) if variable.context else None

        for other in backends.specs():
            read_all(other.variables, lookup, "context")
        return cls.read(lookup, "context")

    def to_env(self) -> dict[str, str]:
        """The environment that reads back as these settings (unset values are left out)."""
        return {
            **render_env(COMMON, self),
            **render_env(self.spec.variables, self.model),
            **self.challenger.to_env(),
        }


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Powertools' own switch: ``POWERTOOLS_TRACE_DISABLED=true`` turns tracing (and the X-Ray SDK) off."""
    env = os.environ if environ is None else environ
    return env.get(POWERTOOLS_TRACE_DISABLED, "false").strip().lower() not in ("true", "1", "yes")
