"""The model controller's template contracts: a one-minute schedule, IAM scoped to this stack's trigger, queue,
parameter and the configured model (start/stop only in auto mode), the trigger deployed paused without a model,
the queue keeping waiting images 14 days, and the alarms."""

from __future__ import annotations

from typing import Any

from stacks.controller import PLATFORM_SETTINGS
from tests.infrastructure.synth import Synthesized, synth

MODEL_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/bees/version/bees.2025-01-01T00.00.00/1735689600000"


def controller_statements(s: Synthesized) -> list[dict[str, Any]]:
    role = s.logical_id(s.stack.controller.role)
    found: list[dict[str, Any]] = []
    for resource in s.resources("AWS::IAM::Policy").values():
        if {"Ref": role} in resource["Properties"]["Roles"]:
            found += resource["Properties"]["PolicyDocument"]["Statement"]
    return found


def actions(statement: dict[str, Any]) -> set[str]:
    value = statement["Action"]
    return set(value if isinstance(value, list) else [value])


def by_action(s: Synthesized) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for statement in controller_statements(s):
        for action in actions(statement):
            found[action] = statement["Resource"]
    return found


def controller_function(s: Synthesized) -> dict[str, Any]:
    found: dict[str, Any] = s.json["Resources"][s.logical_id(s.stack.controller.function)]
    return found


def test_the_controller_runs_every_minute_on_its_own_function():
    s = synth()
    rules = [r for r in s.resources("AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]]
    assert [rule["Properties"]["ScheduleExpression"] for rule in rules] == ["rate(1 minute)"]
    rule = rules[0]
    target = rule["Properties"]["Targets"][0]
    assert target["Arn"] == {"Fn::GetAtt": [s.logical_id(s.stack.controller.function), "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0  # the next minute is the retry
    function = controller_function(s)["Properties"]
    assert function["Handler"] == "lambdas.controller.handler.lambda_handler"
    assert function["Environment"]["Variables"]["AUTO_MODE"] == "false"


def test_without_auto_mode_the_controller_can_only_look_and_pause():
    s = synth(rekognitionModelArn=MODEL_ARN)
    granted = by_action(s)
    function = s.logical_id(s.stack.inference.function)
    assert "rekognition:StartProjectVersion" not in granted
    assert "rekognition:StopProjectVersion" not in granted
    assert "rekognition:DetectCustomLabels" not in granted
    assert set(granted) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "lambda:GetFunctionConfiguration",
        "lambda:GetEventSourceMapping",
        "lambda:UpdateEventSourceMapping",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "ssm:GetParameter",
        "ssm:PutParameter",
        "rekognition:DescribeProjects",
        "rekognition:DescribeProjectVersions",
    }
    assert granted["lambda:GetFunctionConfiguration"] == {"Fn::GetAtt": [function, "Arn"]}
    # The trigger's own ARN, not every mapping in the account.
    mapping_resource = granted["lambda:UpdateEventSourceMapping"]
    assert "event-source-mapping:" in str(mapping_resource)
    assert "Ref" in str(mapping_resource)
    queue = {"Fn::GetAtt": [s.logical_id(s.stack.ingest.queue), "Arn"]}
    for action in ("GetQueueAttributes", "ReceiveMessage", "SendMessage", "DeleteMessage"):
        assert granted[f"sqs:{action}"] == queue  # this queue only: refreshing its waiting messages
    assert granted["kms:Decrypt"] == {"Fn::GetAtt": [s.logical_id(s.stack.ingest.key), "Arn"]}
    assert "project/bees/*" in str(granted["rekognition:DescribeProjectVersions"])


def test_auto_mode_may_start_and_stop_only_the_configured_model_version():
    s = synth(rekognitionModelArn=MODEL_ARN, autoMode=True, modelIdleMinutes=30, inferenceUnits=3)
    granted = by_action(s)
    assert granted["rekognition:StartProjectVersion"] == MODEL_ARN
    assert granted["rekognition:StopProjectVersion"] == MODEL_ARN
    variables = controller_function(s)["Properties"]["Environment"]["Variables"]
    assert variables["AUTO_MODE"] == "true"
    assert variables["MODEL_IDLE_MINUTES"] == "30"
    assert variables["START_INFERENCE_UNITS"] == "3"


def test_auto_mode_before_training_is_scoped_to_the_projects_versions():
    s = synth(autoMode=True, rekognitionProjectName="bees")
    start = str(by_action(s)["rekognition:StartProjectVersion"])
    assert "project/bees/version/*" in start


def test_a_sagemaker_controller_only_describes_the_configured_endpoint():
    s = synth(backend="sagemaker", sagemakerEndpointName="Bee-Detector")
    granted = by_action(s)
    assert not any(action.startswith("rekognition:") for action in granted)
    assert "endpoint/bee-detector" in str(granted["sagemaker:DescribeEndpoint"])
    assert "sagemaker:InvokeEndpoint" not in granted


def test_the_trigger_is_deployed_paused_without_a_model_and_enabled_with_one():
    without = synth()
    ((_, mapping),) = without.resources("AWS::Lambda::EventSourceMapping").items()
    assert mapping["Properties"]["Enabled"] is False
    with_model = synth(rekognitionModelArn=MODEL_ARN)
    ((_, mapping),) = with_model.resources("AWS::Lambda::EventSourceMapping").items()
    assert mapping["Properties"].get("Enabled", True) is True


def test_waiting_images_are_kept_14_days():
    s = synth()
    queue = s.json["Resources"][s.logical_id(s.stack.ingest.queue)]
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_alarms_for_long_waits_and_a_failing_controller():
    s = synth(autoMode=True)
    alarms = {
        alarm["Properties"].get("MetricName", "expression"): alarm
        for alarm in s.resources("AWS::CloudWatch::Alarm").values()
    }
    assert alarms["ApproximateAgeOfOldestMessage"]["Properties"]["Threshold"] == 45 * 60  # auto mode default
    errors = [
        alarm
        for alarm in s.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "Errors"
        and alarm["Properties"]["Dimensions"][0]["Value"] == {"Ref": s.logical_id(s.stack.controller.function)}
    ]
    assert len(errors) == 1
    assert errors[0]["Properties"]["EvaluationPeriods"] == 3
    custom = synth(maxWaitMinutes=90)
    ages = [
        alarm["Properties"]["Threshold"]
        for alarm in custom.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "ApproximateAgeOfOldestMessage"
    ]
    assert ages == [90 * 60]


def test_the_controllers_platform_settings_are_the_functions():
    """Metrics in the stack's namespace, no tracing, botocore's standard retries: taken from the settings the inference
    function gets (``platform_environment``), not written out again; the stack's default traces the function."""
    s = synth()
    controller = controller_function(s)["Properties"]["Environment"]["Variables"]
    function = s.json["Resources"][s.logical_id(s.stack.inference.function)]["Properties"]["Environment"]["Variables"]
    assert {name: controller[name] for name in PLATFORM_SETTINGS} == {
        "POWERTOOLS_METRICS_NAMESPACE": function["POWERTOOLS_METRICS_NAMESPACE"],
        "POWERTOOLS_TRACE_DISABLED": "true",  # the controller is never traced
        "AWS_RETRY_MODE": function["AWS_RETRY_MODE"],
    }
    assert "POWERTOOLS_TRACE_DISABLED" not in function
