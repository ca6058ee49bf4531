"""Configuration is validated once, and every error names the variable to fix."""

from __future__ import annotations

import pytest

from lambdas.contract.rules import ConfigError
from lambdas.contract.settings import Settings
from stacks.config import StackConfig

ARN = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v.2024-01-01T00.00.00/1700000000000"


def env(**values: str) -> dict[str, str]:
    return {"BACKEND": "rekognition", "REKOGNITION_MODEL_ARN": ARN, **values}


def test_defaults():
    settings = Settings.from_env(env())
    assert settings.backend == "rekognition"
    assert settings.model_id == ARN
    assert settings.min_confidence == 50.0
    assert settings.input_prefix == "test_images/"
    assert settings.label_thresholds == {}
    assert ".jpg" in settings.image_suffixes
    assert settings.record_concurrency == 10


def test_blank_values_mean_default():
    assert Settings.from_env(env(MIN_CONFIDENCE=" ", LABEL_THRESHOLDS="")).min_confidence == 50.0


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("BACKEND", "tensorflow", "unknown backend"),
        ("MIN_CONFIDENCE", "101", "between 0 and 100"),
        ("MIN_CONFIDENCE", "-0.1", "between 0 and 100"),
        ("MIN_CONFIDENCE", "nan", "between 0 and 100"),
        ("MIN_CONFIDENCE", "fifty", "number from 0 to 100"),
        ("LABEL_THRESHOLDS", "{cat: 90}", "not valid JSON"),
        ("LABEL_THRESHOLDS", "[90]", "JSON object"),
        ("REKOGNITION_MODEL_ARN", "arn:aws:rekognition:us-east-1:123:project/p", "model version ARN"),
        ("INPUT_PREFIX", "images", "ending in '/'"),
        ("INPUT_PREFIX", "/images/", "do not start with '/'"),
        ("RECORD_CONCURRENCY", "0", "between 1 and 64"),
        ("SAGEMAKER_RESPONSE_FORMAT", "yolo", "expected one of"),
        ("SAGEMAKER_CONTENT_TYPE", "image/gif", "expected one of"),
        ("SAGEMAKER_CLASS_NAMES", '{"one": "cat"}', "class indices"),
        ("IMAGE_SUFFIXES", "jpg", "a dot and"),
    ],
)
def test_bad_values_name_the_variable(variable, value, fragment):
    # A backend's variables are read when that backend is configured.
    backend = {"BACKEND": "sagemaker", "SAGEMAKER_ENDPOINT_NAME": "ep"} if variable.startswith("SAGEMAKER") else {}
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env(**backend, **{variable: value}))
    assert raised.value.setting.startswith(variable)
    assert str(raised.value).startswith(variable)
    assert fragment in str(raised.value)


def test_label_threshold_errors_name_the_label():
    with pytest.raises(ConfigError, match=r"LABEL_THRESHOLDS\['cat'\]: must be between 0 and 100"):
        Settings.from_env(env(LABEL_THRESHOLDS='{"cat": 120}'))


def test_backend_needs_its_model_before_it_can_work():
    # Deployable before a model exists: reading succeeds, building the function's runtime does not.
    with pytest.raises(ConfigError, match="REKOGNITION_MODEL_ARN: is not set"):
        Settings.from_env({"BACKEND": "rekognition"}).require_model()
    with pytest.raises(ConfigError, match="SAGEMAKER_ENDPOINT_NAME: is not set"):
        Settings.from_env({"BACKEND": "sagemaker"}).require_model()


def test_sagemaker_settings_and_class_names_in_every_spelling():
    base = {"BACKEND": "SageMaker", "SAGEMAKER_ENDPOINT_NAME": "detector"}
    assert Settings.from_env({**base, "SAGEMAKER_CLASS_NAMES": '["cat", "dog"]'}).model.class_names == {
        0: "cat",
        1: "dog",
    }
    assert Settings.from_env({**base, "SAGEMAKER_CLASS_NAMES": '{"1": "cat"}'}).model.class_names == {1: "cat"}
    settings = Settings.from_env({**base, "SAGEMAKER_CLASS_NAMES": "cat, dog"})
    assert settings.model.class_names == {0: "cat", 1: "dog"}
    assert settings.backend == "sagemaker"
    assert settings.model_id == "detector"


def test_stack_config_and_lambda_settings_agree():
    # What the stack puts in the environment is what the function reads back.
    context: dict[str, object] = {
        "minConfidence": "72.5",
        "labelThresholds": {"cat": 90},
        "backend": "sagemaker",
        "sagemakerEndpointName": "ep",
        "sagemakerClassNames": ["cat", "dog"],
        "imageSuffixes": [".jpg", ".PNG"],
    }
    config = StackConfig.from_context(lambda key: context.get(key))
    settings = Settings.from_env(config.lambda_environment())
    assert settings.min_confidence == 72.5
    assert settings.label_thresholds == {"cat": 90.0}
    assert settings.model.class_names == {0: "cat", 1: "dog"}
    assert settings.image_suffixes == (".jpg", ".png")
    assert settings.model_id == "ep"


def config_of(**context: object) -> StackConfig:
    return StackConfig.from_context(lambda key: context.get(key))


def test_model_call_attempts_fit_inside_the_function_timeout():
    for timeout, attempts in [(60, 3), (10, 3), (900, 5), (3, 1)]:
        config = config_of(lambdaTimeoutSeconds=timeout, retryMaxAttempts=attempts)
        per_attempt = config.backend_read_timeout_seconds + 2  # read + connect
        assert per_attempt * attempts <= max(timeout, attempts * 3)
        assert Settings.from_env(
            config.lambda_environment() | {"REKOGNITION_MODEL_ARN": ARN}
        ).backend_read_timeout_seconds == (config.backend_read_timeout_seconds)
    assert config_of().backend_read_timeout_seconds == 13  # 60 s: 3 attempts of 2 s connect + 13 s read = 45 s


def test_visibility_timeout_and_max_concurrency_derivation():
    assert config_of(lambdaTimeoutSeconds=100, maxBatchingWindowSeconds=20).visibility_timeout_seconds == 620
    assert config_of(inferenceUnits=10).max_concurrency == 5  # 10 units x 5 TPS / 10 calls in flight per batch
    assert config_of().max_concurrency == 2  # never below the SQS trigger's minimum
    assert config_of(maxConcurrency=50).max_concurrency == 50
