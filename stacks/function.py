"""The inference function: code bundled without Docker, least-privilege role, SQS trigger."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aws_cdk import (
    BundlingOptions,
    CustomResourceProviderBase,
    Duration,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from lambdas.contract.backends.grants import Grant
from lambdas.contract.settings import COMMON
from stacks import definitions
from stacks.analytics import OutcomeTable
from stacks.bundling import LAMBDA_PYTHON_VERSION, lambda_bundling
from stacks.config import StackConfig
from stacks.ingest import Ingest
from stacks.nag import acknowledge_wildcards, spelled

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
RUNTIME = lambda_.Runtime.PYTHON_3_14
assert RUNTIME.name == f"python{LAMBDA_PYTHON_VERSION}", "wheels are selected for the runtime's Python"
HANDLER = "lambdas.inference.handler.lambda_handler"


def function_code(bundle: bool) -> lambda_.Code:
    """The asset: the ``inference`` package plus its dependencies as arm64 wheels for the runtime's Python."""
    return lambda_.Code.from_asset(
        str(LAMBDAS_DIR),
        exclude=["**/__pycache__", "**/*.pyc"],
        bundling=BundlingOptions(
            # Only used if local bundling declines; it never does, so no Docker is needed.
            image=RUNTIME.bundling_image,
            local=lambda_bundling(),
        )
        if bundle
        else None,
    )


class InferenceFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        ingest: Ingest,
        bundle: bool,
        outcomes: OutcomeTable | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        stack = Stack.of(self)

        self.log_group = function_log_group(self, config)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Image inference function: read images, write results, call the configured model",
        )
        self._grant_least_privilege(config, ingest, stack)
        if outcomes is not None:
            outcomes.grant_put(self.role)
        writers = [self.role.role_arn, *config.result_writer_arns]
        if config.allow_destroy:
            # The stack's auto-delete empties the bucket before CloudFormation deletes it.
            auto_delete = stack.node.try_find_child("Custom::S3AutoDeleteObjectsCustomResourceProvider")
            assert isinstance(auto_delete, CustomResourceProviderBase), "allowDestroy adds CDK's auto-delete"
            writers.append(auto_delete.role_arn)
        ingest.bucket.add_to_resource_policy(
            iam.PolicyStatement.from_json(
                definitions.result_writers_statement(ingest.bucket.bucket_arn, config.input_prefix, writers)
            )
        )

        environment: dict[str, str] = {
            **config.lambda_environment(),
            _env("result_kms_key_arn"): ingest.key.key_arn,
            _env("queue_url"): ingest.queue.queue_url,
        }
        if outcomes is not None:
            environment[_env("outcome_stream_name")] = outcomes.stream.ref
        self.code = function_code(bundle)  # one asset, shared with the model controller
        self.function = lambda_.Function(
            self,
            "Function",
            description="Runs the configured model on images dropped under the input prefix",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=self.code,
            memory_size=config.lambda_memory_mb,
            timeout=Duration.seconds(config.lambda_timeout_seconds),
            tracing=lambda_.Tracing.ACTIVE if config.tracing else lambda_.Tracing.DISABLED,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment=environment,
        )
        self.trigger = sources.SqsEventSource(
            ingest.queue,
            batch_size=config.batch_size,
            max_batching_window=(
                Duration.seconds(config.max_batching_window_seconds) if config.max_batching_window_seconds else None
            ),
            max_concurrency=config.max_concurrency,
            report_batch_item_failures=True,
            # Without a model nothing can be inferred: the trigger starts paused and images wait in the queue
            # until the model controller sees a ready model and resumes it.
            enabled=config.function.model_id is not None,
        )
        self.function.add_event_source(self.trigger)

    def _grant_least_privilege(self, config: StackConfig, ingest: Ingest, stack: Stack) -> None:
        bucket_arn = ingest.bucket.bucket_arn
        prefix = config.input_prefix
        statements = [
            own_logs_statement(self.log_group),
            iam.PolicyStatement(
                sid="ReadImagesUnderInputPrefix",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[f"{bucket_arn}/{prefix}*"],
            ),
            iam.PolicyStatement(
                # Without ListBucket a missing key reads as AccessDenied instead of NoSuchKey.
                sid="ListInputPrefix",
                actions=["s3:ListBucket"],
                resources=[bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            ),
            iam.PolicyStatement(
                sid="WriteResultDocuments",
                actions=["s3:PutObject"],
                resources=[f"{bucket_arn}/{prefix}*.json"],
            ),
            iam.PolicyStatement(
                sid="UseStackKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[ingest.key.key_arn],
            ),
        ]
        # What the configured backend needs, as its module declares it.
        statements += grant_statements(model_grants(config, StackArns(stack)))
        for statement in statements:
            self.role.add_to_policy(statement)
        self._acknowledge_wildcards(config, ingest, stack)

    def _acknowledge_wildcards(self, config: StackConfig, ingest: Ingest, stack: Stack) -> None:
        """cdk-nag IAM5: each wildcard resource named, with why it is the narrowest that works."""
        bucket = ingest.bucket.node.default_child
        assert bucket is not None
        bucket_arn = f"<{stack.get_logical_id(bucket)}.Arn>"  # type: ignore[arg-type]
        prefix = config.input_prefix
        reasons = {
            f"{bucket_arn}/{prefix}*": "Reads images by key under the input prefix only; keys are unknown in advance",
            f"{bucket_arn}/{prefix}*.json": "Writes only result documents (<image key>.json) under the input prefix",
        }
        if config.tracing:
            reasons["*"] = "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions"
        reasons.update(wildcard_reasons(model_grants(config, NagArns(stack))))
        acknowledge_wildcards(self.role, reasons)


def function_log_group(scope: Construct, config: StackConfig) -> logs.LogGroup:
    """A function's log group ("Logs"), kept for ``logRetentionDays`` and retained unless ``allowDestroy``."""
    removal = RemovalPolicy.DESTROY if config.allow_destroy else RemovalPolicy.RETAIN
    log_group = logs.LogGroup(scope, "Logs", removal_policy=removal)
    # RetentionDays is an enum of names; the validated number of days goes straight to CloudFormation.
    cfn_log_group = log_group.node.default_child
    assert isinstance(cfn_log_group, logs.CfnLogGroup)
    cfn_log_group.retention_in_days = config.log_retention_days
    return log_group


def own_logs_statement(log_group: logs.LogGroup) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid="WriteOwnLogs",
        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
        resources=[log_group.log_group_arn],
    )


def grant_statements(grants: Iterable[Grant]) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(sid=grant.sid, actions=list(grant.actions), resources=list(grant.resources))
        for grant in grants
    ]


def wildcard_reasons(grants: Iterable[Grant]) -> dict[str, str]:
    """Each wildcard resource of these grants, with why it is the narrowest that works."""
    return {
        resource: grant.wildcard_reason for grant in grants if grant.wildcard_reason for resource in grant.resources
    }


def model_grants(config: StackConfig, arns: Any) -> list[Grant]:
    """What the primary model's backend needs, and the challenger's (its statements' SIDs prefixed)."""
    grants = list(config.function.spec.grants(config.function.model, arns))
    challenger = config.function.challenger
    if challenger.enabled:
        for grant in challenger.spec.grants(challenger.model, arns):
            grants.append(grant._replace(sid=f"Challenger{grant.sid}"))
    return grants


class StackArns:
    """ARNs in the stack's partition, region and account (tokens until deploy)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def arn(self, service: str, resource: str, name: str) -> str:
        return self.stack.format_arn(service=service, resource=resource, resource_name=name)


class NagArns:
    """The same ARNs as cdk-nag spells them in a finding (pseudo-parameters for unresolved values)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def arn(self, service: str, resource: str, name: str) -> str:
        stack = self.stack
        return (
            f"arn:{spelled(stack.partition, 'Partition')}:{service}:{spelled(stack.region, 'Region')}:"
            f"{spelled(stack.account, 'AccountId')}:{resource}/{name}"
        )


def _env(field: str) -> str:
    """The environment variable of one of the function's settings (settings.COMMON defines the names)."""
    name = next(variable.env for variable in COMMON if variable.field == field)
    assert name is not None
    return name
