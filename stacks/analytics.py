"""The outcome table: every outcome document the function writes also becomes a row that Athena queries.

- An analytics bucket (the stack's key, TLS only, no public access, access logs), apart from the images: Athena
  reads every object under a table's location, so a table over the input prefix would read the images too.
- Amazon Data Firehose (Direct PUT, encrypted with the stack's key): the function puts a batch's rows in one call;
  Firehose converts the JSON rows to Parquet with the Glue table's schema and writes them by day.
- The Glue Data Catalog: a database, the ``outcomes`` table (partition projection on ``day``: no crawler, no
  partitions to add) and the ``inventory`` table over S3 Inventory's daily Parquet listing of the input prefix.
- An Athena workgroup that enforces its settings: engine version 3, a bytes-scanned limit per query, results
  encrypted with the stack's key under a prefix that expires; the ready-made queries as named queries.
- A Step Functions state machine (Distributed Map) that re-sends a list of images to the queue, paced.

Plain data (prefixes, columns, the state machine's definition): ``outcome_definitions.py``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.contract import outcome_table
from stacks import outcome_definitions
from stacks.config import StackConfig
from stacks.ingest import Ingest, private_bucket
from stacks.nag import acknowledge_wildcards, spelled

PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
SYMLINK_INPUT = "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat"
IGNORE_KEY_OUTPUT = "org.apache.hadoop.hive.ql.io.IgnoreKeyTextOutputFormat"
MB = 1024 * 1024


def catalog_name(stack_name: str) -> str:
    """A Glue database name for the stack (lower case, digits and underscores)."""
    return re.sub(r"[^a-z0-9_]", "_", stack_name.lower()) + "_outcomes"


class OutcomeTable(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StackConfig, ingest: Ingest, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        stack = Stack.of(self)
        removal = RemovalPolicy.DESTROY if config.allow_destroy else RemovalPolicy.RETAIN
        self.database_name = catalog_name(stack.stack_name)
        self.workgroup_name = f"{stack.stack_name}-outcomes"
        self.state_machine_name = f"{stack.stack_name}-resend"
        days = config.outcome_retention_days

        self.bucket = s3.Bucket(
            self,
            "Bucket",
            **private_bucket(ingest.key, ingest.access_logs, "analytics-bucket/"),
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-rows", prefix=outcome_definitions.ROWS_PREFIX, expiration=Duration.days(days)
                ),
                s3.LifecycleRule(
                    id="expire-row-errors", prefix=outcome_definitions.ERRORS_PREFIX, expiration=Duration.days(days)
                ),
                s3.LifecycleRule(
                    id="expire-inventory",
                    prefix=f"{outcome_definitions.INVENTORY_PREFIX}/",
                    expiration=Duration.days(outcome_definitions.INVENTORY_EXPIRY_DAYS),
                ),
                s3.LifecycleRule(
                    id="expire-query-results",
                    prefix=outcome_definitions.RESULTS_PREFIX,
                    expiration=Duration.days(config.athena_results_days),
                ),
                s3.LifecycleRule(
                    id="expire-resend-lists",
                    prefix=outcome_definitions.RESEND_PREFIX,
                    expiration=Duration.days(outcome_definitions.RESEND_EXPIRY_DAYS),
                ),
                s3.LifecycleRule(id="abort-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)),
            ],
            removal_policy=removal,
            auto_delete_objects=config.allow_destroy,
        )
        self._inventory(ingest, config)
        self._catalog(ingest, days)
        self.stream = self._stream(ingest)
        self.workgroup = self._workgroup(ingest, config)
        self._named_queries()
        self.state_machine = self._resend(ingest, config)

    # -- S3 Inventory ------------------------------------------------------------------------------------------

    def _inventory(self, ingest: Ingest, config: StackConfig) -> None:
        """A daily Parquet listing of the input prefix's current objects. S3 writes it with the bucket's default
        encryption, the stack's key: the key lets S3 in this account generate data keys (its source bucket cannot
        be named in the key policy: the bucket's encryption names the key, a cycle)."""
        ingest.bucket.add_inventory(
            destination=s3.InventoryDestination(bucket=self.bucket, prefix=outcome_definitions.INVENTORY_PREFIX),
            enabled=True,
            format=s3.InventoryFormat.PARQUET,
            frequency=s3.InventoryFrequency.DAILY,
            include_object_versions=s3.InventoryObjectVersion.CURRENT,
            inventory_id=outcome_definitions.INVENTORY_ID,
            objects_prefix=config.input_prefix,
            optional_fields=list(outcome_definitions.INVENTORY_FIELDS),
        )
        stack = Stack.of(self)
        ingest.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="S3InventoryEncrypt",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.inventory_location = f"s3://{self.bucket.bucket_name}/{outcome_definitions.INVENTORY_PREFIX}/{ingest.bucket.bucket_name}/{outcome_definitions.INVENTORY_ID}/hive/"

    # -- the Glue Data Catalog ------------------------------------------------------------------------------

    def _catalog(self, ingest: Ingest, days: int) -> None:
        stack = Stack.of(self)
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name, description="The image inference stack's outcomes (one row per document)"
            ),
        )
        self.table = glue.CfnTable(
            self,
            "Outcomes",
            catalog_id=stack.account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=outcome_table.TABLE,
                description="One row per outcome document the function wrote (append-only: current_outcomes "
                "keeps the last per image)",
                table_type="EXTERNAL_TABLE",
                parameters={
                    **outcome_definitions.outcome_projection(days),
                    "storage.location.template": f"s3://{self.bucket.bucket_name}/{outcome_definitions.ROWS_PREFIX}"
                    f"{outcome_table.PARTITION}=${{{outcome_table.PARTITION}}}/",
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name=outcome_table.PARTITION, type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[
                        glue.CfnTable.ColumnProperty(name=c["name"], type=c["type"], comment=c["comment"])
                        for c in outcome_definitions.outcome_columns()
                    ],
                    location=f"s3://{self.bucket.bucket_name}/{outcome_definitions.ROWS_PREFIX}",
                    input_format=PARQUET_INPUT,
                    output_format=PARQUET_OUTPUT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=PARQUET_SERDE),
                ),
            ),
        )
        self.table.node.add_dependency(self.database)
        self.inventory_table = glue.CfnTable(
            self,
            "Inventory",
            catalog_id=stack.account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name="inventory",
                description="S3 Inventory's daily listing of the input prefix (the latest: dt = its newest value)",
                table_type="EXTERNAL_TABLE",
                parameters=outcome_definitions.inventory_projection(outcome_definitions.INVENTORY_EXPIRY_DAYS),
                partition_keys=[glue.CfnTable.ColumnProperty(name="dt", type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[
                        glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in outcome_definitions.INVENTORY_COLUMNS
                    ],
                    location=self.inventory_location,
                    input_format=SYMLINK_INPUT,
                    output_format=IGNORE_KEY_OUTPUT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=PARQUET_SERDE),
                ),
            ),
        )
        self.inventory_table.node.add_dependency(self.database)

    # -- Firehose ----------------------------------------------------------------------------------------------

    def _stream(self, ingest: Ingest) -> firehose.CfnDeliveryStream:
        stack = Stack.of(self)
        log_group = logs.LogGroup(self, "DeliveryLogs", retention=logs.RetentionDays.ONE_MONTH)
        log_stream = logs.LogStream(self, "DeliveryErrors", log_group=log_group)
        role = iam.Role(
            self,
            "DeliveryRole",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com", conditions={"StringEquals": {"sts:ExternalId": stack.account}}
            ),
            description="Firehose: convert the function's rows to Parquet and write them to the analytics bucket",
        )
        catalog = f"arn:{stack.partition}:glue:{stack.region}:{stack.account}"
        for statement in (
            iam.PolicyStatement(
                sid="WriteRows",
                actions=["s3:AbortMultipartUpload", "s3:PutObject", "s3:GetObject"],
                resources=[
                    f"{self.bucket.bucket_arn}/{outcome_definitions.ROWS_PREFIX}*",
                    f"{self.bucket.bucket_arn}/{outcome_definitions.ERRORS_PREFIX}*",
                ],
            ),
            iam.PolicyStatement(
                sid="ListAnalyticsBucket",
                actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[self.bucket.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="UseStackKey", actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[ingest.key.key_arn]
            ),
            iam.PolicyStatement(
                sid="ReadTableSchema",
                actions=["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
                resources=[
                    f"{catalog}:catalog",
                    f"{catalog}:database/{self.database_name}",
                    f"{catalog}:table/{self.database_name}/{outcome_table.TABLE}",
                ],
            ),
            iam.PolicyStatement(
                sid="WriteDeliveryErrors", actions=["logs:PutLogEvents"], resources=[log_group.log_group_arn]
            ),
        ):
            role.add_to_policy(statement)
        stream = firehose.CfnDeliveryStream(
            self,
            "Stream",
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                key_type="CUSTOMER_MANAGED_CMK", key_arn=ingest.key.key_arn
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=self.bucket.bucket_arn,
                role_arn=role.role_arn,
                prefix=outcome_definitions.rows_prefix(),
                error_output_prefix=outcome_definitions.errors_prefix(),
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=outcome_definitions.BUFFER_SECONDS, size_in_m_bs=outcome_definitions.BUFFER_MB
                ),
                compression_format="UNCOMPRESSED",  # Parquet compresses its own pages (Snappy)
                encryption_configuration=firehose.CfnDeliveryStream.EncryptionConfigurationProperty(
                    kms_encryption_config=firehose.CfnDeliveryStream.KMSEncryptionConfigProperty(
                        awskms_key_arn=ingest.key.key_arn
                    )
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True, log_group_name=log_group.log_group_name, log_stream_name=log_stream.log_stream_name
                ),
                data_format_conversion_configuration=firehose.CfnDeliveryStream.DataFormatConversionConfigurationProperty(
                    enabled=True,
                    input_format_configuration=firehose.CfnDeliveryStream.InputFormatConfigurationProperty(
                        deserializer=firehose.CfnDeliveryStream.DeserializerProperty(
                            open_x_json_ser_de=firehose.CfnDeliveryStream.OpenXJsonSerDeProperty()
                        )
                    ),
                    output_format_configuration=firehose.CfnDeliveryStream.OutputFormatConfigurationProperty(
                        serializer=firehose.CfnDeliveryStream.SerializerProperty(
                            parquet_ser_de=firehose.CfnDeliveryStream.ParquetSerDeProperty(compression="SNAPPY")
                        )
                    ),
                    schema_configuration=firehose.CfnDeliveryStream.SchemaConfigurationProperty(
                        catalog_id=stack.account,
                        database_name=self.database_name,
                        table_name=outcome_table.TABLE,
                        region=stack.region,
                        role_arn=role.role_arn,
                        version_id="LATEST",
                    ),
                ),
            ),
        )
        stream.node.add_dependency(self.table)
        policy = role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            stream.node.add_dependency(policy)  # the role can write before the stream checks it can
        bucket = f"<{_id(self.bucket)}.Arn>"
        acknowledge_wildcards(
            role,
            {
                f"{bucket}/{outcome_definitions.ROWS_PREFIX}*": "Firehose writes objects it names itself under rows/",
                f"{bucket}/{outcome_definitions.ERRORS_PREFIX}*": "Firehose writes rows it could not convert under "
                "errors/, under names of its own",
            },
        )
        return stream

    # -- Athena ------------------------------------------------------------------------------------------------

    def _workgroup(self, ingest: Ingest, config: StackConfig) -> athena.CfnWorkGroup:
        return athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=self.workgroup_name,
            description="Queries over the outcome table: a bytes-scanned limit, results encrypted and expiring",
            recursive_delete_option=True,
            state="ENABLED",
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                bytes_scanned_cutoff_per_query=config.athena_scan_limit_mb * MB,
                publish_cloud_watch_metrics_enabled=True,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.bucket.bucket_name}/{outcome_definitions.RESULTS_PREFIX}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=ingest.key.key_arn
                    ),
                ),
            ),
        )

    def _named_queries(self) -> None:
        for query in outcome_table.NAMED_QUERIES:
            named = athena.CfnNamedQuery(
                self,
                "Query" + "".join(part.title() for part in query.name.split("-")),
                name=query.name,
                description=query.description,
                database=self.database_name,
                work_group=self.workgroup_name,
                query_string=outcome_table.with_current(query.sql),
            )
            named.node.add_dependency(self.workgroup)

    # -- the re-send state machine ------------------------------------------------------------------------------

    def _resend(self, ingest: Ingest, config: StackConfig) -> sfn.StateMachine:
        stack = Stack.of(self)
        log_group = logs.LogGroup(self, "ResendLogs", retention=logs.RetentionDays.ONE_MONTH)
        machine = sfn.StateMachine(
            self,
            "Resend",
            state_machine_name=self.state_machine_name,
            comment="Re-send a list of images to the inference queue, paced (inferctl reprocess --engine athena)",
            definition_body=sfn.DefinitionBody.from_string(
                json.dumps(
                    outcome_definitions.resend_definition(
                        "${QueueUrl}", outcome_definitions.resend_concurrency(config.model_capacity)
                    )
                )
            ),
            definition_substitutions={"QueueUrl": ingest.queue.queue_url},
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            tracing_enabled=True,
            timeout=Duration.days(7),
        )
        own = stack.format_arn(service="states", resource="stateMachine", resource_name=self.state_machine_name)
        executions = (
            f"arn:{stack.partition}:states:{stack.region}:{stack.account}:execution:{self.state_machine_name}/*"
        )
        for statement in (
            iam.PolicyStatement(
                sid="ReadResendLists",
                actions=["s3:GetObject"],
                resources=[f"{self.bucket.bucket_arn}/{outcome_definitions.RESEND_PREFIX}*"],
            ),
            iam.PolicyStatement(sid="SendToQueue", actions=["sqs:SendMessage"], resources=[ingest.queue.queue_arn]),
            iam.PolicyStatement(
                sid="UseStackKey", actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[ingest.key.key_arn]
            ),
            iam.PolicyStatement(sid="RunItsChildren", actions=["states:StartExecution"], resources=[own]),
            iam.PolicyStatement(
                sid="WatchItsChildren",
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[executions],
            ),
        ):
            machine.add_to_role_policy(statement)
        acknowledge_wildcards(
            machine.role,
            {
                f"<{_id(self.bucket)}.Arn>/{outcome_definitions.RESEND_PREFIX}*": "Reads the lists inferctl reprocess "
                "writes under resend/, one per run",
                f"arn:{spelled(stack.partition, 'Partition')}:states:{spelled(stack.region, 'Region')}:"
                f"{spelled(stack.account, 'AccountId')}:execution:{self.state_machine_name}/*": "A Distributed Map "
                "watches the child executions it starts: their names are its own",
                "*": "Step Functions' log delivery and X-Ray actions support no resource-level permissions",
            },
        )
        return machine

    # -- what the function and the stack's outputs need ----------------------------------------------------------

    def grant_put(self, role: iam.IRole) -> None:
        """The function may put rows to its stream, and nothing else of the table."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PutOutcomeRows", actions=["firehose:PutRecordBatch"], resources=[self.stream.attr_arn]
            )
        )

    def outputs(self, ingest: Ingest) -> dict[str, tuple[Any, str]]:
        return {
            "OutcomeStreamName": (self.stream.ref, "Firehose stream the function puts outcome rows to"),
            "OutcomeDatabase": (self.database_name, "Glue database of the outcome table"),
            "OutcomeWorkgroup": (self.workgroup_name, "Athena workgroup for the outcome table (inferctl query)"),
            "AnalyticsBucketName": (self.bucket.bucket_name, "Rows, inventory, query results and re-send lists"),
            "InventoryLocation": (self.inventory_location, "S3 Inventory's listings (hive/dt=... folders)"),
            "ResendStateMachineArn": (self.state_machine.state_machine_arn, "Re-sends a list of images, paced"),
            "OutcomeBufferSeconds": (
                str(outcome_definitions.BUFFER_SECONDS),
                "Firehose's buffer: rows reach the table this late",
            ),
        }


def _id(construct: Construct) -> str:
    child = construct.node.default_child
    assert child is not None
    return Stack.of(construct).get_logical_id(child)  # type: ignore[arg-type]
