"""The outcome table's template contracts: Firehose into Parquet by day, the Glue tables (the function's row
schema, column for column), S3 Inventory, the Athena workgroup with its limit and encrypted expiring results, the
named queries, the re-send state machine, and least privilege (the function may only put to its stream)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.contract import outcome_table
from stacks import outcome_definitions
from stacks.analytics import catalog_name
from tests.infrastructure.synth import Synthesized, synth

MB = 1024 * 1024


@pytest.fixture(scope="module")
def default() -> Synthesized:
    return synth()


def ref(s: Synthesized, construct: Any) -> dict[str, str]:
    return {"Ref": s.logical_id(construct)}


def arn(s: Synthesized, construct: Any) -> dict[str, list[str]]:
    logical = s.logical_id(construct) if construct.node.default_child else str(s.stack.resolve(construct.logical_id))
    return {"Fn::GetAtt": [logical, "Arn"]}


def policy_statements(s: Synthesized, role: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for resource in s.resources("AWS::IAM::Policy").values():
        if {"Ref": s.logical_id(role)} in resource["Properties"]["Roles"]:
            found += resource["Properties"]["PolicyDocument"]["Statement"]
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return value if isinstance(value, list) else [value]


def test_firehose_converts_rows_to_parquet_by_day_with_the_tables_schema_encrypted_with_the_stack_key(default):
    outcomes = default.stack.outcomes
    assert outcomes is not None
    _, stream = default.one("AWS::KinesisFirehose::DeliveryStream")
    properties = stream["Properties"]
    assert properties["DeliveryStreamType"] == "DirectPut"
    assert properties["DeliveryStreamEncryptionConfigurationInput"] == {
        "KeyType": "CUSTOMER_MANAGED_CMK",
        "KeyARN": arn(default, default.stack.ingest.key),
    }
    destination = properties["ExtendedS3DestinationConfiguration"]
    assert destination["BucketARN"] == arn(default, outcomes.bucket)
    assert destination["Prefix"] == "rows/day=!{timestamp:yyyy-MM-dd}/"
    assert destination["ErrorOutputPrefix"].startswith("errors/!{firehose:error-output-type}/")
    assert destination["BufferingHints"] == {
        "IntervalInSeconds": outcome_definitions.BUFFER_SECONDS,
        "SizeInMBs": outcome_definitions.BUFFER_MB,
    }
    assert destination["EncryptionConfiguration"]["KMSEncryptionConfig"]["AWSKMSKeyARN"] == arn(
        default, default.stack.ingest.key
    )
    conversion = destination["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    assert conversion["InputFormatConfiguration"]["Deserializer"] == {"OpenXJsonSerDe": {}}
    assert conversion["OutputFormatConfiguration"]["Serializer"] == {"ParquetSerDe": {"Compression": "SNAPPY"}}
    schema = conversion["SchemaConfiguration"]
    assert (schema["DatabaseName"], schema["TableName"], schema["VersionId"]) == (
        catalog_name(default.stack.stack_name),
        "outcomes",
        "LATEST",
    )


def test_the_glue_table_holds_the_functions_row_column_for_column_partitioned_by_a_projected_day(default):
    outcomes = default.stack.outcomes
    assert outcomes is not None
    (table,) = [
        t["Properties"]["TableInput"]
        for t in default.resources("AWS::Glue::Table").values()
        if t["Properties"]["TableInput"]["Name"] == "outcomes"
    ]
    columns = table["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == [(c.name, c.glue) for c in outcome_table.COLUMNS]
    assert table["PartitionKeys"] == [{"Name": "day", "Type": "string"}]
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    parameters = table["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.day.type"] == "date"
    assert parameters["projection.day.format"] == "yyyy-MM-dd"
    assert parameters["projection.day.range"] == "NOW-400DAYS,NOW"
    bucket = ref(default, outcomes.bucket)
    assert parameters["storage.location.template"] == {"Fn::Join": ["", ["s3://", bucket, "/rows/day=${day}/"]]}
    assert table["StorageDescriptor"]["Location"] == {"Fn::Join": ["", ["s3://", bucket, "/rows/"]]}


def test_the_inventory_lists_the_input_prefix_daily_in_parquet_where_its_table_reads(default):
    outcomes = default.stack.outcomes
    assert outcomes is not None
    images = default.json["Resources"][default.logical_id(default.stack.ingest.bucket)]["Properties"]
    (inventory,) = images["InventoryConfigurations"]
    assert inventory["Enabled"] is True
    assert (inventory["ScheduleFrequency"], inventory["IncludedObjectVersions"]) == ("Daily", "Current")
    assert inventory["Prefix"] == "test_images/"
    assert inventory["Destination"]["Format"] == "Parquet"
    assert inventory["Destination"]["BucketArn"] == arn(default, outcomes.bucket)
    assert inventory["Destination"]["Prefix"] == outcome_definitions.INVENTORY_PREFIX
    assert set(outcome_definitions.INVENTORY_FIELDS) <= set(inventory["OptionalFields"])
    (table,) = [
        t["Properties"]["TableInput"]
        for t in default.resources("AWS::Glue::Table").values()
        if t["Properties"]["TableInput"]["Name"] == "inventory"
    ]
    assert [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]] == list(
        outcome_definitions.INVENTORY_COLUMNS
    )
    assert table["StorageDescriptor"]["InputFormat"].endswith("SymlinkTextInputFormat")
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    assert table["Parameters"]["projection.dt.format"] == "yyyy-MM-dd-HH-mm"
    location = table["StorageDescriptor"]["Location"]["Fn::Join"][1]
    # s3://<analytics>/inventory/<images bucket>/images/hive/: where S3 writes the Hive symlinks
    assert location == [
        "s3://",
        ref(default, outcomes.bucket),
        "/inventory/",
        ref(default, default.stack.ingest.bucket),
        "/images/hive/",
    ]


def test_the_workgroup_enforces_its_scan_limit_engine_and_encrypted_expiring_results(default):
    outcomes = default.stack.outcomes
    assert outcomes is not None
    _, workgroup = default.one("AWS::Athena::WorkGroup")
    configuration = workgroup["Properties"]["WorkGroupConfiguration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["BytesScannedCutoffPerQuery"] == 10_240 * MB
    assert configuration["EngineVersion"] == {"SelectedEngineVersion": "Athena engine version 3"}
    results = configuration["ResultConfiguration"]
    assert results["OutputLocation"] == {"Fn::Join": ["", ["s3://", ref(default, outcomes.bucket), "/athena-results/"]]}
    assert results["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_KMS",
        "KmsKey": arn(default, default.stack.ingest.key),
    }
    s = synth(athenaScanLimitMb=50, athenaResultsDays=2, outcomeRetentionDays=30)
    assert s.stack.outcomes is not None
    _, workgroup = s.one("AWS::Athena::WorkGroup")
    assert workgroup["Properties"]["WorkGroupConfiguration"]["BytesScannedCutoffPerQuery"] == 50 * MB
    rules = {
        rule["Id"]: rule
        for rule in s.json["Resources"][s.logical_id(s.stack.outcomes.bucket)]["Properties"]["LifecycleConfiguration"][
            "Rules"
        ]
    }
    assert (rules["expire-query-results"]["Prefix"], rules["expire-query-results"]["ExpirationInDays"]) == (
        "athena-results/",
        2,
    )
    assert (rules["expire-rows"]["Prefix"], rules["expire-rows"]["ExpirationInDays"]) == ("rows/", 30)


def test_the_analytics_bucket_is_encrypted_private_tls_only_and_logged(default):
    outcomes = default.stack.outcomes
    assert outcomes is not None
    bucket = default.json["Resources"][default.logical_id(outcomes.bucket)]["Properties"]
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": arn(default, default.stack.ingest.key),
    }
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == ref(default, default.stack.ingest.access_logs)
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in default.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == ref(default, outcomes.bucket)
    ]
    (statements,) = policies
    assert any(
        st["Effect"] == "Deny" and st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for st in statements
    )


def test_each_named_query_is_shipped_with_current_outcomes_in_the_workgroup(default):
    queries = {q["Properties"]["Name"]: q["Properties"] for q in default.resources("AWS::Athena::NamedQuery").values()}
    assert set(queries) == {query.name for query in outcome_table.NAMED_QUERIES}
    for query in outcome_table.NAMED_QUERIES:
        shipped = queries[query.name]
        assert shipped["QueryString"] == outcome_table.with_current(query.sql)
        assert shipped["Database"] == catalog_name(default.stack.stack_name)
        assert shipped["WorkGroup"] == default.stack.outcomes.workgroup_name


def test_the_function_may_only_put_rows_to_its_own_stream(default):
    outcomes = default.stack.outcomes
    assert outcomes is not None
    statements = policy_statements(default, default.stack.inference.role)
    table_actions = [
        (action, st["Resource"])
        for st in statements
        for action in actions(st)
        if action.split(":")[0] in ("firehose", "athena", "glue", "states")
    ]
    assert table_actions == [("firehose:PutRecordBatch", arn(default, outcomes.stream))]
    function = default.json["Resources"][default.logical_id(default.stack.inference.function)]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["OUTCOME_STREAM_NAME"] == {"Ref": default.stack.resolve(outcomes.stream.logical_id)}
    analytics = default.logical_id(outcomes.bucket)
    assert not any(analytics in json.dumps(st["Resource"]) for st in statements), "the function never reads the rows"


def test_the_resend_machine_reads_only_its_lists_sends_only_to_the_queue_and_paces_to_the_model(default):
    outcomes = default.stack.outcomes
    assert outcomes is not None
    _, machine = default.one("AWS::StepFunctions::StateMachine")
    definition = json.loads(machine["Properties"]["DefinitionString"])
    assert machine["Properties"]["DefinitionSubstitutions"]["QueueUrl"] == ref(default, default.stack.ingest.queue)
    capacity = default.stack.config.model_capacity  # Rekognition: 1 inference unit, 5 images a second
    assert definition == outcome_definitions.resend_definition(
        "${QueueUrl}", outcome_definitions.resend_concurrency(capacity)
    )
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
    assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ALL"
    statements = policy_statements(default, outcomes.state_machine.role)
    sends = [st for st in statements if "sqs:SendMessage" in actions(st)]
    assert [st["Resource"] for st in sends] == [arn(default, default.stack.ingest.queue)]
    reads = [st for st in statements if "s3:GetObject" in actions(st)]
    assert [json.dumps(st["Resource"]) for st in reads] == [
        json.dumps({"Fn::Join": ["", [arn(default, outcomes.bucket), "/resend/*"]]})
    ]
    # a model of 50 images a second: 50 batches of ten in flight, each waiting ten seconds
    s = synth(backend="sagemaker", sagemakerEndpointName="detector", sagemakerMaxCallsPerSecond=50)
    _, machine = s.one("AWS::StepFunctions::StateMachine")
    assert json.loads(machine["Properties"]["DefinitionString"])["States"]["Resend"]["MaxConcurrency"] == 50


def test_outputs_name_the_table_for_the_cli(default):
    outputs = default.json["Outputs"]
    assert {
        "OutcomeStreamName",
        "OutcomeDatabase",
        "OutcomeWorkgroup",
        "AnalyticsBucketName",
        "InventoryLocation",
        "ResendStateMachineArn",
        "OutcomeBufferSeconds",
    } <= set(outputs)
    assert outputs["OutcomeWorkgroup"]["Value"] == default.stack.outcomes.workgroup_name


def test_without_the_table_nothing_of_it_is_made_and_the_function_sends_no_rows():
    s = synth(outcomeTable=False)
    for kind in (
        "AWS::KinesisFirehose::DeliveryStream",
        "AWS::Glue::Table",
        "AWS::Glue::Database",
        "AWS::Athena::WorkGroup",
        "AWS::Athena::NamedQuery",
        "AWS::StepFunctions::StateMachine",
    ):
        assert not s.resources(kind), kind
    function = s.json["Resources"][s.logical_id(s.stack.inference.function)]
    assert "OUTCOME_STREAM_NAME" not in function["Properties"]["Environment"]["Variables"]
    assert "InventoryConfigurations" not in s.json["Resources"][s.logical_id(s.stack.ingest.bucket)]["Properties"]
    assert "OutcomeWorkgroup" not in s.json["Outputs"]
