"""Promotion as environment arithmetic: the challenger's backend and model become the primary's and the other
way round, every other variable untouched; retiring removes only the challenger; nothing without one."""

from __future__ import annotations

import json

import pytest

from inferctl.stack import promotion
from lambdas.contract.rules import ConfigError
from lambdas.contract.settings import Settings

ARN = "arn:aws:rekognition:us-east-1:123456789012:project/bees/version/bees.2025-01-01T00.00.00/1735689600000"
LIVE = {
    "BACKEND": "rekognition",
    "REKOGNITION_MODEL_ARN": ARN,
    "MIN_CONFIDENCE": "70",
    "LABEL_THRESHOLDS": '{"bee": 90}',
    "INPUT_PREFIX": "test_images/",
    "RESULT_KMS_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:key/k",
    "CHALLENGER_BACKEND": "sagemaker",
    "CHALLENGER_SAMPLE_PERCENT": "25",
    "CHALLENGER_SAGEMAKER_ENDPOINT_NAME": "bees-diy",
    "CHALLENGER_SAGEMAKER_RESPONSE_FORMAT": "tensorflow-serving-detection",
    "CHALLENGER_SAGEMAKER_CONTENT_TYPE": "application/json",
    "CHALLENGER_SAGEMAKER_CLASS_NAMES": '{"1": "bee"}',
}


def test_promote_swaps_backend_and_model_and_keeps_everything_else():
    after = promotion.swapped(dict(LIVE))
    settings = Settings.from_env(after)
    assert settings.backend == "sagemaker"
    assert settings.model.endpoint_name == "bees-diy"
    assert settings.model.response_format == "tensorflow-serving-detection"
    assert settings.model.content_type == "application/json"
    assert dict(settings.model.class_names) == {1: "bee"}
    assert settings.challenger.backend == "rekognition"
    assert settings.challenger.model.model_arn == ARN
    assert settings.challenger.sample_percent == 25
    assert "REKOGNITION_MODEL_ARN" not in after
    for unchanged in ("MIN_CONFIDENCE", "LABEL_THRESHOLDS", "INPUT_PREFIX", "RESULT_KMS_KEY_ARN"):
        assert after[unchanged] == LIVE[unchanged]
    # Promoting twice is the identity on what the function reads.
    assert Settings.from_env(promotion.swapped(after)) == Settings.from_env(LIVE)


def test_retire_removes_only_the_challenger():
    after = promotion.retired(dict(LIVE))
    assert not any(key.startswith("CHALLENGER_") for key in after)
    assert {key: LIVE[key] for key in after} == after
    assert Settings.from_env(after).challenger.enabled is False


def test_without_a_challenger_there_is_nothing_to_promote_or_retire():
    alone = {key: value for key, value in LIVE.items() if not key.startswith("CHALLENGER_")}
    with pytest.raises(ConfigError, match="CHALLENGER_BACKEND"):
        promotion.swapped(alone)
    with pytest.raises(ConfigError, match="CHALLENGER_BACKEND"):
        promotion.retired(alone)


def test_a_challenger_without_its_model_is_refused_naming_the_variable():
    broken = {**LIVE}
    del broken["CHALLENGER_SAGEMAKER_ENDPOINT_NAME"]
    with pytest.raises(ConfigError, match="CHALLENGER_SAGEMAKER_ENDPOINT_NAME"):
        promotion.swapped(broken)


def test_the_context_written_back_names_the_new_models(tmp_path):
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(
        json.dumps({"context": {"backend": "rekognition", "challengerSagemakerEndpointName": "bees-diy", "x": 1}})
    )
    promotion._write_context(cdk_json, Settings.from_env(promotion.swapped(dict(LIVE))))
    context = json.loads(cdk_json.read_text())["context"]
    assert context["backend"] == "sagemaker"
    assert context["sagemakerEndpointName"] == "bees-diy"
    assert context["challengerBackend"] == "rekognition"
    assert context["challengerRekognitionModelArn"] == ARN
    assert "challengerSagemakerEndpointName" not in context
    assert context["x"] == 1


def test_promoting_an_endpoint_into_an_auto_mode_stack_leaves_a_configuration_the_controller_can_run(tmp_path):
    from lambdas.contract.backends.control import READY, ModelStatus
    from lambdas.controller.decide import Memory, Observation, Policy, decide
    from stacks.config import StackConfig

    # GIVEN a Rekognition primary in auto mode and a SageMaker challenger
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"app": "python3 app.py", "context": {"backend": "rekognition", "autoMode": True}}))
    after = Settings.from_env(promotion.swapped(dict(LIVE)))

    # WHEN it is promoted (written back to cdk.json)
    promotion._write_context(path, after)

    # THEN the written context deploys (auto mode off: an endpoint cannot be stopped) ...
    written = json.loads(path.read_text())["context"]
    assert written["autoMode"] is False
    assert StackConfig.from_cdk_json({}, path=path).backend == "sagemaker"
    # ... and the live controller, still in auto mode, never stops the endpoint nor pauses its trigger
    endpoint = ModelStatus("bees-diy", READY, "InService", can_start_stop=after.spec.lifecycle.can_start_stop)
    idle = Observation(model=endpoint, waiting=0, in_flight=0, trigger_enabled=True, now=10_000.0)
    decision = decide(idle, Memory(state=READY, idle_since=0.0), Policy(auto=True, idle_seconds=60, units=1))
    assert (decision.trigger_enabled, decision.action) == (True, None)
