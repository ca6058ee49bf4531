"""A challenger's template contracts: the function may call both models and nothing else, the challenger's
settings reach the environment, and a challenger that sees every image caps the trigger's concurrency at the
smaller model's capacity."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.contract.rules import ConfigError
from stacks.config import StackConfig, cdk_json_context
from tests.infrastructure.synth import synth
from tests.infrastructure.test_stack_contracts import function_statements

ARN = "arn:aws:rekognition:us-east-1:123456789012:project/bees/version/bees.2025-01-01T00.00.00/1735689600000"
CHALLENGER: dict[str, Any] = {
    "rekognitionModelArn": ARN,
    "challengerBackend": "sagemaker",
    "challengerSagemakerEndpointName": "Bees-DIY",
    "challengerSamplePercent": 25,
}


def model_statements(context: dict[str, Any]) -> dict[str, Any]:
    s = synth(**context)
    found = {}
    for statement in function_statements(s):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            if action.startswith(("rekognition:", "sagemaker:")):
                found[action] = statement["Resource"]
    return found


def test_the_function_may_call_both_models_each_by_its_own_arn():
    granted = model_statements(CHALLENGER)
    assert set(granted) == {"rekognition:DetectCustomLabels", "sagemaker:InvokeEndpoint"}
    assert granted["rekognition:DetectCustomLabels"] == ARN
    assert "endpoint/bees-diy" in str(granted["sagemaker:InvokeEndpoint"])
    assert "*" not in str(granted["sagemaker:InvokeEndpoint"])


def test_without_a_challenger_only_the_primary_is_allowed():
    assert set(model_statements({"rekognitionModelArn": ARN})) == {"rekognition:DetectCustomLabels"}


def test_the_challengers_settings_reach_the_function():
    s = synth(**CHALLENGER)
    variables = s.json["Resources"][s.logical_id(s.stack.inference.function)]["Properties"]["Environment"]["Variables"]
    assert variables["CHALLENGER_BACKEND"] == "sagemaker"
    assert variables["CHALLENGER_SAGEMAKER_ENDPOINT_NAME"] == "Bees-DIY"
    assert variables["CHALLENGER_SAMPLE_PERCENT"] == "25"


def config(**context: Any) -> StackConfig:
    merged = {**cdk_json_context(), **context}
    return StackConfig.from_context(merged.get)


def test_a_challenger_on_every_image_caps_concurrency_at_the_smaller_capacity():
    base = {"rekognitionModelArn": ARN, "inferenceUnits": 10}  # 50 calls/s: 5 batches of 10
    assert config(**base).max_concurrency == 5
    slow = {
        "challengerBackend": "sagemaker",
        "challengerSagemakerEndpointName": "e",
        "challengerSagemakerMaxCallsPerSecond": 20,
    }
    assert config(**base, **slow, challengerSamplePercent=100).max_concurrency == 2
    assert config(**base, **slow, challengerSamplePercent=50).max_concurrency == 5


def test_a_challenger_without_its_model_fails_synthesis_naming_the_key():
    with pytest.raises(ConfigError, match="challengerSagemakerEndpointName"):
        config(challengerBackend="sagemaker")
    with pytest.raises(ConfigError, match="challengerBackend"):
        config(challengerBackend="bedrock")
