"""Template contracts, property by property: what makes the stack correct, safe and deployable."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from lambdas.contract.rules import DEFAULT_IMAGE_SUFFIXES, ConfigError
from stacks.config import StackConfig
from stacks.definitions import RESULT_WRITERS_SID
from tests.infrastructure.synth import Synthesized, synth

MODEL_ARN = (
    "arn:aws:rekognition:eu-west-1:123456789012:project/flowers/version/flowers.2025-01-01T10.00.00/1735725600000"
)


@pytest.fixture(scope="module")
def default() -> Synthesized:
    return synth()


def statements(s: Synthesized) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for resource in s.resources("AWS::IAM::Policy").values():
        found += resource["Properties"]["PolicyDocument"]["Statement"]
    for resource in s.resources("AWS::IAM::Role").values():
        for policy in resource["Properties"].get("Policies", []):
            found += policy["PolicyDocument"]["Statement"]
    return found


def function_statements(s: Synthesized) -> list[dict[str, Any]]:
    role = s.logical_id(s.stack.inference.role)
    found: list[dict[str, Any]] = []
    for resource in s.resources("AWS::IAM::Policy").values():
        if {"Ref": role} in resource["Properties"]["Roles"]:
            found += resource["Properties"]["PolicyDocument"]["Statement"]
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statement_for(s: Synthesized, action: str) -> dict[str, Any]:
    matching = [st for st in function_statements(s) if action in as_list(st["Action"])]
    assert len(matching) == 1, f"{action}: {matching}"
    return matching[0]


def joined(value: Any, s: Synthesized) -> str:
    """A resource ARN as text, with references shown as <LogicalId.Attr>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(joined(part, s) for part in value["Fn::Join"][1])
    if "Fn::GetAtt" in value:
        return "<" + ".".join(value["Fn::GetAtt"]) + ">"
    if "Ref" in value:
        return "<" + str(value["Ref"]) + ">"
    raise AssertionError(f"unexpected {value}")


# --- KMS -------------------------------------------------------------------------------------------------


def test_one_customer_managed_key_with_rotation(default):
    _, key = default.one("AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


def test_key_lets_eventbridge_send_encrypted_messages_as_aws_documents_it(default):
    _, key = default.one("AWS::KMS::Key")
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    # S3 itself only writes the inventory (encrypted with the key): data keys, for this account's buckets
    (inventory,) = [st for st in statements if st["Principal"] == {"Service": "s3.amazonaws.com"}]
    assert inventory["Action"] == "kms:GenerateDataKey"
    assert inventory["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    (statement,) = [st for st in statements if st["Principal"] == {"Service": "events.amazonaws.com"}]
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    # EventBridge User Guide: no condition; the queue policies name the rule
    assert "Condition" not in statement
    assert statement["Resource"] == "*"
    # Naming the rule here would make a cycle (key -> rule -> queue -> key).
    assert default.logical_id(default.stack.ingest.rule) not in json.dumps(key)


# --- Buckets ---------------------------------------------------------------------------------------------


def test_image_bucket_is_encrypted_private_versioned_logged_and_retained(default):
    bucket_id = default.logical_id(default.stack.ingest.bucket)
    key_id = default.logical_id(default.stack.ingest.key)
    logs_id = default.logical_id(default.stack.ingest.access_logs)
    bucket = default.json["Resources"][bucket_id]
    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {
                "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
                "SSEAlgorithm": "aws:kms",
            },
        }
    ]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_id}
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize("construct", ["bucket", "access_logs"])
def test_buckets_deny_requests_without_tls(default, construct):
    bucket_id = default.logical_id(getattr(default.stack.ingest, construct))
    policies = [
        p
        for p in default.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    assert len(policies) == 1
    denies = [
        st
        for st in policies[0]["Properties"]["PolicyDocument"]["Statement"]
        if st["Effect"] == "Deny" and st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(denies) == 1
    assert denies[0]["Principal"] == {"AWS": "*"}


def _result_writer_denies(synthesized):
    bucket_id = synthesized.logical_id(synthesized.stack.ingest.bucket)
    (policy,) = [
        p
        for p in synthesized.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    return [st for st in policy["Properties"]["PolicyDocument"]["Statement"] if st.get("Sid") == RESULT_WRITERS_SID]


def test_only_the_function_may_change_result_keys(default):
    (deny,) = _result_writer_denies(default)
    role_id = default.logical_id(default.stack.inference.role)
    bucket_id = default.logical_id(default.stack.ingest.bucket)
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == {"AWS": "*"}
    # Writing one (PutObject: also CopyObject and multipart uploads), deleting it or its newest version, and
    # replicating over it
    assert set(deny["Action"]) == {
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:ReplicateObject",
        "s3:ReplicateDelete",
    }
    assert deny["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/test_images/*.json"]]}
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [{"Fn::GetAtt": [role_id, "Arn"]}]}}


def test_a_throwaway_stack_can_still_empty_its_bucket():
    # allowDestroy's auto-delete empties the bucket, results included, before CloudFormation deletes it
    s = synth(allowDestroy=True)
    (deny,) = _result_writer_denies(s)
    (provider_role,) = [name for name in s.resources("AWS::IAM::Role") if name.startswith("CustomS3AutoDelete")]
    assert {"Fn::GetAtt": [provider_role, "Arn"]} in deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]


def test_the_smoke_tests_results_expire_with_the_buckets_rule(default):
    rules = default.json["Resources"][default.logical_id(default.stack.ingest.bucket)]["Properties"][
        "LifecycleConfiguration"
    ]["Rules"]
    smoke = next(rule for rule in rules if rule["Id"] == "expire-smoke-tests")
    assert smoke["Prefix"] == "test_images/_smoke/"
    assert (smoke["ExpirationInDays"], smoke["NoncurrentVersionExpiration"]["NoncurrentDays"]) == (1, 1)


def test_break_glass_writers_come_from_context():
    admin = "arn:aws:iam::123456789012:role/ImageInferenceBreakGlass"
    (deny,) = _result_writer_denies(synth(resultWriterArns=[admin]))
    writers = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert len(writers) == 2
    assert admin in writers


def test_a_role_sessions_arn_is_refused_naming_the_roles_arn():
    # aws:PrincipalArn is the role's ARN for every session: a session's ARN would never match, silently
    session = "arn:aws:sts::123456789012:assumed-role/Admin/alice@example.com"
    with pytest.raises(ConfigError) as raised:
        StackConfig.from_context({"resultWriterArns": [session]}.get)
    assert str(raised.value).count("\n") == 0
    assert "use arn:aws:iam::123456789012:role/Admin" in str(raised.value)


def test_access_log_bucket_is_private_and_not_public(default):
    logs = default.json["Resources"][default.logical_id(default.stack.ingest.access_logs)]["Properties"]
    assert logs["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    assert logs["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }


def test_allow_destroy_context_makes_a_throwaway_stack():
    throwaway = synth(allowDestroy=True)
    bucket = throwaway.json["Resources"][throwaway.logical_id(throwaway.stack.ingest.bucket)]
    assert bucket["DeletionPolicy"] == "Delete"
    throwaway.template.has_resource("Custom::S3AutoDeleteObjects", {})


# --- Queues ----------------------------------------------------------------------------------------------


def test_queue_and_dlq_are_encrypted_with_the_key_and_redrive_after_max_receive_count(default):
    key_id = default.logical_id(default.stack.ingest.key)
    queue = default.json["Resources"][default.logical_id(default.stack.ingest.queue)]["Properties"]
    dlq_id = default.logical_id(default.stack.ingest.dead_letter_queue)
    dlq = default.json["Resources"][dlq_id]["Properties"]
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert dlq["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 5}
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_max_receive_count_comes_from_context():
    s = synth(maxReceiveCount=3)
    queue = s.json["Resources"][s.logical_id(s.stack.ingest.queue)]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 3


@pytest.mark.parametrize(("timeout", "window"), [(60, 0), (120, 5), (900, 300)])
def test_visibility_timeout_is_at_least_six_times_the_function_timeout_plus_window(timeout, window):
    s = synth(lambdaTimeoutSeconds=timeout, maxBatchingWindowSeconds=window)
    queue = s.json["Resources"][s.logical_id(s.stack.ingest.queue)]["Properties"]
    function = _function(s)
    assert function["Properties"]["Timeout"] == timeout
    assert queue["VisibilityTimeout"] >= 6 * function["Properties"]["Timeout"] + window


@pytest.mark.parametrize("construct", ["queue", "dead_letter_queue"])
def test_queues_deny_requests_without_tls(default, construct):
    queue_id = default.logical_id(getattr(default.stack.ingest, construct))
    policies = [
        p for p in default.resources("AWS::SQS::QueuePolicy").values() if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    denies = [
        st
        for p in policies
        for st in p["Properties"]["PolicyDocument"]["Statement"]
        if st["Effect"] == "Deny" and st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(denies) == 1


def test_only_the_images_rule_may_send_to_the_queue_and_its_dead_letter_queue(default):
    rule_id = default.logical_id(default.stack.ingest.rule)
    for queue in (default.stack.ingest.queue, default.stack.ingest.dead_letter_queue):
        queue_id = default.logical_id(queue)
        sends = [
            st
            for p in default.resources("AWS::SQS::QueuePolicy").values()
            if {"Ref": queue_id} in p["Properties"]["Queues"]
            for st in p["Properties"]["PolicyDocument"]["Statement"]
            if st["Effect"] == "Allow"
        ]
        assert sends == [
            {
                "Action": "sqs:SendMessage",
                "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}},
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
                "Sid": "AllowImageEventsRule",
            }
        ]


# --- Events ----------------------------------------------------------------------------------------------


def test_the_bucket_sends_its_events_to_eventbridge_and_nothing_straight_to_sqs(default):
    _, notifications = default.one("Custom::S3BucketNotifications")
    assert notifications["Properties"]["NotificationConfiguration"] == {"EventBridgeConfiguration": {}}


def test_one_rule_routes_created_images_any_letter_case_and_never_a_result(default):
    # EventBridge's suffix match ignores case (IMG_0001.Jpg is an image); results end in .json and never match:
    # one message per image.
    rule = default.json["Resources"][default.logical_id(default.stack.ingest.rule)]["Properties"]
    bucket_id = default.logical_id(default.stack.ingest.bucket)
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"] == {"name": [{"Ref": bucket_id}]}
    suffixes = [alternative["suffix"]["equals-ignore-case"] for alternative in pattern["detail"]["object"]["key"]]
    assert suffixes == list(DEFAULT_IMAGE_SUFFIXES)
    assert ".json" not in suffixes
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [default.logical_id(default.stack.ingest.queue), "Arn"]}
    # What EventBridge cannot deliver (after its retries) goes to the dead-letter queue, with the images' failures
    assert target["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": [default.logical_id(default.stack.ingest.dead_letter_queue), "Arn"]}
    }
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}


def test_input_prefix_and_image_suffixes_come_from_context():
    s = synth(inputPrefix="incoming/photos/", imageSuffixes=[".jpg", ".heic"])
    rule = s.json["Resources"][s.logical_id(s.stack.ingest.rule)]["Properties"]
    keys = rule["EventPattern"]["detail"]["object"]["key"]
    assert [alternative["suffix"]["equals-ignore-case"] for alternative in keys] == [".jpg", ".heic"]
    variables = _function(s)["Properties"]["Environment"]["Variables"]
    assert variables["INPUT_PREFIX"] == "incoming/photos/"  # the function skips images outside it


# --- Function --------------------------------------------------------------------------------------------


def _function(s: Synthesized) -> dict[str, Any]:
    result: dict[str, Any] = s.json["Resources"][s.logical_id(s.stack.inference.function)]
    return result


def test_function_runtime_architecture_tracing_logging(default):
    props = _function(default)["Properties"]
    runtime = props["Runtime"]
    assert runtime.startswith("python3.")
    assert int(runtime.split(".")[1]) >= 13
    assert props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["Handler"] == "lambdas.inference.handler.lambda_handler"
    assert props["MemorySize"] == 1024
    assert props["Timeout"] == 60
    log_group_id = default.logical_id(default.stack.inference.log_group)
    assert props["LoggingConfig"]["LogGroup"] == {"Ref": log_group_id}
    log_group = default.json["Resources"][log_group_id]["Properties"]
    assert log_group["RetentionInDays"] == 30


def test_tracing_can_be_turned_off_for_the_leanest_cold_start():
    s = synth(tracing=False)
    props = _function(s)["Properties"]
    assert "TracingConfig" not in props or props["TracingConfig"] == {"Mode": "PassThrough"}
    assert props["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert not [st for st in function_statements(s) if "xray:PutTraceSegments" in as_list(st["Action"])]


def test_function_environment_carries_the_tunables(default):
    variables = _function(default)["Properties"]["Environment"]["Variables"]
    assert variables["BACKEND"] == "rekognition"
    assert variables["MIN_CONFIDENCE"] == "50"
    assert variables["LABEL_THRESHOLDS"] == "{}"
    assert variables["INPUT_PREFIX"] == "test_images/"
    assert variables["AWS_RETRY_MODE"] == "standard"
    assert variables["AWS_MAX_ATTEMPTS"] == "3"
    assert variables["BACKEND_READ_TIMEOUT_SECONDS"] == "13"
    assert variables["RESULT_KMS_KEY_ARN"] == {"Fn::GetAtt": [default.logical_id(default.stack.ingest.key), "Arn"]}
    assert "REKOGNITION_MODEL_ARN" not in variables  # deployable before a model exists


def test_trigger_reports_batch_item_failures_with_settings_from_context():
    s = synth(batchSize=5, maxBatchingWindowSeconds=2, maxConcurrency=7, lambdaMemoryMb=2048, lambdaTimeoutSeconds=90)
    _, mapping = s.one("AWS::Lambda::EventSourceMapping")
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == 5
    assert props["MaximumBatchingWindowInSeconds"] == 2
    assert props["ScalingConfig"] == {"MaximumConcurrency": 7}
    assert props["EventSourceArn"] == {"Fn::GetAtt": [s.logical_id(s.stack.ingest.queue), "Arn"]}
    function = _function(s)["Properties"]
    assert (function["MemorySize"], function["Timeout"]) == (2048, 90)


def test_max_concurrency_is_derived_from_inference_units():
    # 4 units x 5 TPS = 20 calls/s; one batch makes up to min(batchSize, recordConcurrency) = 5 calls at once
    s = synth(inferenceUnits=4, batchSize=5, recordConcurrency=5)
    _, mapping = s.one("AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 4}


# --- Least privilege -------------------------------------------------------------------------------------


def test_no_wildcard_actions_anywhere(default):
    for statement in statements(default):
        for action in as_list(statement["Action"]):
            assert "*" not in action, statement


def test_function_reads_only_under_the_prefix_and_writes_only_result_keys(default):
    bucket = f"<{default.logical_id(default.stack.ingest.bucket)}.Arn>"
    read = statement_for(default, "s3:GetObject")
    assert sorted(as_list(read["Action"])) == ["s3:GetObject", "s3:GetObjectVersion"]
    assert [joined(r, default) for r in as_list(read["Resource"])] == [f"{bucket}/test_images/*"]
    write = statement_for(default, "s3:PutObject")
    assert as_list(write["Action"]) == ["s3:PutObject"]
    assert [joined(r, default) for r in as_list(write["Resource"])] == [f"{bucket}/test_images/*.json"]
    listing = statement_for(default, "s3:ListBucket")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["test_images/*"]}}
    assert not any("s3:DeleteObject" in as_list(st["Action"]) for st in function_statements(default))


def test_function_uses_only_the_stack_key(default):
    key = default.logical_id(default.stack.ingest.key)
    kms = [st for st in function_statements(default) if any(a.startswith("kms:") for a in as_list(st["Action"]))]
    assert kms
    for statement in kms:
        assert set(as_list(statement["Action"])) <= {"kms:Decrypt", "kms:GenerateDataKey"}
        assert as_list(statement["Resource"]) == [{"Fn::GetAtt": [key, "Arn"]}]


def test_rekognition_permission_is_project_scoped_until_a_model_is_configured(default):
    detect = statement_for(default, "rekognition:DetectCustomLabels")
    assert [joined(r, default) for r in as_list(detect["Resource"])] == [
        "arn:<AWS::Partition>:rekognition:<AWS::Region>:<AWS::AccountId>:project/image-inference/version/*"
    ]
    assert not [st for st in function_statements(default) if "sagemaker:InvokeEndpoint" in as_list(st["Action"])]


def test_rekognition_permission_is_the_configured_model_only():
    s = synth(rekognitionModelArn=MODEL_ARN)
    detect = statement_for(s, "rekognition:DetectCustomLabels")
    assert as_list(detect["Resource"]) == [MODEL_ARN]
    assert _function(s)["Properties"]["Environment"]["Variables"]["REKOGNITION_MODEL_ARN"] == MODEL_ARN


def test_sagemaker_permission_is_the_configured_endpoint_only():
    s = synth(backend="sagemaker", sagemakerEndpointName="Flower-Detector")
    invoke = statement_for(s, "sagemaker:InvokeEndpoint")
    assert [joined(r, s) for r in as_list(invoke["Resource"])] == [
        "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:endpoint/flower-detector"
    ]
    assert not [st for st in function_statements(s) if "rekognition:DetectCustomLabels" in as_list(st["Action"])]
    variables = _function(s)["Properties"]["Environment"]["Variables"]
    assert (variables["BACKEND"], variables["SAGEMAKER_ENDPOINT_NAME"]) == ("sagemaker", "Flower-Detector")


# --- Outputs and alarms ----------------------------------------------------------------------------------


def test_outputs_name_what_operators_and_the_cli_need(default):
    outputs = default.json["Outputs"]
    assert {"BucketName", "InputPrefix", "QueueUrl", "DeadLetterQueueUrl", "FunctionName"} <= set(outputs)
    assert outputs["BucketName"]["Value"] == {"Ref": default.logical_id(default.stack.ingest.bucket)}
    assert outputs["InputPrefix"]["Value"] == "test_images/"
    assert outputs["QueueUrl"]["Value"] == {"Ref": default.logical_id(default.stack.ingest.queue)}
    assert outputs["DeadLetterQueueUrl"]["Value"] == {"Ref": default.logical_id(default.stack.ingest.dead_letter_queue)}
    assert outputs["FunctionName"]["Value"] == {"Ref": default.logical_id(default.stack.inference.function)}


def test_alarms_notify_an_existing_topic_when_one_is_configured(default):
    topic = "arn:aws:sns:eu-west-1:123456789012:ops-alerts"
    s = synth(alarmTopicArn=topic)
    alarms = s.resources("AWS::CloudWatch::Alarm").values()
    # dead letters, backlog age, model output, function errors, controller errors; rows refused, not converted, late
    assert len(alarms) == 8
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"] == [topic]
        assert alarm["Properties"]["OKActions"] == [topic]
    assert not s.resources("AWS::SNS::Topic")  # no topic of its own then


def test_without_a_topic_the_stack_makes_one_and_every_alarm_notifies_it(default):
    ((topic_id, topic),) = default.resources("AWS::SNS::Topic").items()
    assert topic["Properties"]["KmsMasterKeyId"] == {
        "Fn::GetAtt": [default.logical_id(default.stack.ingest.key), "Arn"]
    }
    alarms = default.resources("AWS::CloudWatch::Alarm").values()
    assert len(alarms) == 8
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Properties"]["OKActions"] == [{"Ref": topic_id}]
    # CloudWatch may publish to it (from this account's alarms) and encrypt with the key
    ((_, policy),) = default.resources("AWS::SNS::TopicPolicy").items()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (publish,) = [st for st in statements if st.get("Sid") == "CloudWatchAlarmsPublish"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert any(st["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(st) for st in statements)
    _, key = default.one("AWS::KMS::Key")
    (encrypt,) = [
        st for st in key["Properties"]["KeyPolicy"]["Statement"] if st.get("Sid") == "CloudWatchAlarmsEncrypt"
    ]
    assert encrypt["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert default.json["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": topic_id}
    assert not default.resources("AWS::SNS::Subscription")


def test_alarm_email_subscribes_to_the_stacks_topic():
    s = synth(alarmEmail="ops@example.com")
    ((_, subscription),) = s.resources("AWS::SNS::Subscription").items()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"


def test_the_oldest_waiting_image_alarm_reaches_the_topic(default):
    ((topic_id, _),) = default.resources("AWS::SNS::Topic").items()
    (age,) = [
        alarm
        for alarm in default.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "ApproximateAgeOfOldestMessage"
    ]
    assert age["Properties"]["Threshold"] == 15 * 60
    assert age["Properties"]["AlarmActions"] == [{"Ref": topic_id}]


def test_alarms_watch_the_dlq_and_the_backlog(default):
    dlq = default.stack.ingest.dead_letter_queue
    default.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Namespace": "AWS/SQS",
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [default.logical_id(dlq), "QueueName"]}}],
        },
    )
    default.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"MetricName": "ApproximateAgeOfOldestMessage", "Namespace": "AWS/SQS", "Threshold": Match.any_value()},
    )


def test_an_alarm_fires_on_the_first_unusable_model_answer(default):
    alarms = [
        a["Properties"] for a in default.resources("AWS::CloudWatch::Alarm").values() if "Metrics" in a["Properties"]
    ]
    (alarm,) = alarms
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    names = {
        m["MetricStat"]["Metric"]["MetricName"]: m["MetricStat"]["Metric"]
        for m in alarm["Metrics"]
        if "MetricStat" in m
    }
    assert set(names) == {"Error_RESPONSE_FORMAT_UNKNOWN", "Error_MODEL_OUTPUT_INVALID"}
    for metric in names.values():
        assert metric["Namespace"] == "ImageInference"
        assert metric["Dimensions"] == [{"Name": "service", "Value": "image-inference"}]


def _math_alarms(s: Synthesized) -> list[dict[str, Any]]:
    return [a["Properties"] for a in s.resources("AWS::CloudWatch::Alarm").values() if "Metrics" in a["Properties"]]


def test_the_near_threshold_alarm_is_off_by_default_and_reads_the_functions_daily_share_when_asked(default):
    assert len(_math_alarms(default)) == 1  # the unusable-answer alarm only
    s = synth(nearThresholdAlarmShare=0.3)
    (alarm,) = [a for a in _math_alarms(s) if "NearThreshold" in json.dumps(a["Metrics"])]
    assert alarm["Threshold"] == 0.3
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "near / processed"
    stats = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert {k: v["Metric"]["MetricName"] for k, v in stats.items()} == {
        "near": "NearThresholdImages",
        "processed": "ImagesProcessed",
    }
    assert {v["Period"] for v in stats.values()} == {86400}
    assert alarm["AlarmActions"]  # it reaches the topic like every alarm


def test_a_near_threshold_share_outside_0_01_to_1_is_refused():
    with pytest.raises(Exception, match="nearThresholdAlarmShare"):
        synth(nearThresholdAlarmShare=30)
