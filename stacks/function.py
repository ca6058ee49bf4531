"""The inference function: code bundled without Docker, least-privilege role, SQS trigger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, BundlingOptions, Duration, RemovalPolicy, Stack, Token, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from .bundling import LAMBDA_PYTHON_VERSION, lambda_bundling
from .config import StackConfig
from .ingest import Ingest

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
RUNTIME = lambda_.Runtime.PYTHON_3_14
assert RUNTIME.name == f"python{LAMBDA_PYTHON_VERSION}", "wheels are selected for the runtime's Python"
HANDLER = "inference.handler.lambda_handler"
SERVICE_NAME = "image-inference"
METRICS_NAMESPACE = "ImageInference"


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
        self, scope: Construct, construct_id: str, *, config: StackConfig, ingest: Ingest, bundle: bool, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        stack = Stack.of(self)
        removal = RemovalPolicy.DESTROY if config.allow_destroy else RemovalPolicy.RETAIN

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            removal_policy=removal,
        )
        # RetentionDays is an enum of names; the validated number of days goes straight to CloudFormation.
        cfn_log_group = self.log_group.node.default_child
        assert isinstance(cfn_log_group, logs.CfnLogGroup)
        cfn_log_group.retention_in_days = config.log_retention_days
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Image inference function: read images, write results, call the configured model",
        )
        self._grant_least_privilege(config, ingest, stack)

        environment = {
            **config.lambda_environment(),
            "RESULT_KMS_KEY_ARN": ingest.key.key_arn,
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        self.function = lambda_.Function(
            self,
            "Function",
            description="Runs the configured model on images dropped under the input prefix",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=function_code(bundle),
            memory_size=config.lambda_memory_mb,
            timeout=Duration.seconds(config.lambda_timeout_seconds),
            tracing=lambda_.Tracing.ACTIVE if config.tracing else lambda_.Tracing.DISABLED,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment=environment,
        )
        self.function.add_event_source(
            sources.SqsEventSource(
                ingest.queue,
                batch_size=config.batch_size,
                max_batching_window=(
                    Duration.seconds(config.max_batching_window_seconds) if config.max_batching_window_seconds else None
                ),
                max_concurrency=config.max_concurrency,
                report_batch_item_failures=True,
            )
        )

    def _grant_least_privilege(self, config: StackConfig, ingest: Ingest, stack: Stack) -> None:
        bucket_arn = ingest.bucket.bucket_arn
        prefix = config.input_prefix
        statements = [
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            ),
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
        if config.rekognition_model_arn:
            statements.append(
                iam.PolicyStatement(
                    sid="DetectWithConfiguredModel",
                    actions=["rekognition:DetectCustomLabels"],
                    resources=[config.rekognition_model_arn],
                )
            )
        elif config.backend == "rekognition":
            # Deployed before training (deploy, train, then set the ARN): scoped to the project's versions.
            statements.append(
                iam.PolicyStatement(
                    sid="DetectWithProjectModels",
                    actions=["rekognition:DetectCustomLabels"],
                    resources=[
                        stack.format_arn(
                            service="rekognition",
                            resource="project",
                            resource_name=f"{config.rekognition_project_name}/version/*",
                        )
                    ],
                )
            )
        if config.sagemaker_endpoint_name:
            statements.append(
                iam.PolicyStatement(
                    sid="InvokeConfiguredEndpoint",
                    actions=["sagemaker:InvokeEndpoint"],
                    # Endpoint ARNs carry the name in lower case.
                    resources=[
                        stack.format_arn(
                            service="sagemaker",
                            resource="endpoint",
                            resource_name=config.sagemaker_endpoint_name.lower(),
                        )
                    ],
                )
            )
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
        if config.backend == "rekognition" and not config.rekognition_model_arn:
            pattern = (
                f"arn:{_nag(stack.partition, 'Partition')}:rekognition:{_nag(stack.region, 'Region')}:"
                f"{_nag(stack.account, 'AccountId')}:project/{config.rekognition_project_name}/version/*"
            )
            reasons[pattern] = (
                "No model version exists before the first training; scoped to the project's versions until "
                "rekognitionModelArn is set"
            )
        Validations.of(self.role).acknowledge(
            *(
                Acknowledgment(id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason=reason)
                for resource, reason in reasons.items()
            )
        )


def _nag(value: str, pseudo: str) -> str:
    """How cdk-nag spells a stack attribute in a finding: the value if known at synth, else the pseudo-parameter."""
    return f"<AWS::{pseudo}>" if Token.is_unresolved(value) else value
