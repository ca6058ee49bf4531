"""The model controller: a small function on a one-minute schedule that pauses the SQS trigger while the model
cannot answer (stopped, starting, missing, not configured) and resumes it when the model is ready; in auto
mode it also starts a stopped model when images wait and stops it after ``modelIdleMinutes`` of idleness.
Logic: ``lambdas/controller/decide.py``; handler: ``lambdas/controller/handler.py``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from lambdas.contract.settings import POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_TRACE_DISABLED, platform_environment
from stacks.config import StackConfig
from stacks.function import (
    RUNTIME,
    InferenceFunction,
    NagArns,
    StackArns,
    function_log_group,
    grant_statements,
    own_logs_statement,
    wildcard_reasons,
)
from stacks.ingest import Ingest
from stacks.nag import acknowledge_wildcards

HANDLER = "lambdas.controller.handler.lambda_handler"
SCHEDULE_MINUTES = 1
STATE_PARAMETER_VALUE = "{}"
# What the controller takes of the functions' platform settings (``platform_environment``): its metrics in the stack's
# namespace, no tracing, botocore's standard retries. Its service name is its own (``lambdas/controller/handler.py``),
# and it decodes no image (no allocator setting).
PLATFORM_SETTINGS = (POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_TRACE_DISABLED, "AWS_RETRY_MODE")


class ModelController(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        ingest: Ingest,
        inference: InferenceFunction,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        stack = Stack.of(self)
        self.state = ssm.StringParameter(
            self,
            "State",
            description="What the model controller saw last (idle since, model state since); it rewrites it",
            string_value=STATE_PARAMETER_VALUE,
        )
        self.log_group = function_log_group(self, config)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Model controller: read the model's status and the queue, pause/resume the trigger"
            + (", start/stop the model" if config.auto_mode else ""),
        )
        mapping_arn = inference.trigger.event_source_mapping_arn
        statements = [
            own_logs_statement(self.log_group),
            iam.PolicyStatement(
                sid="ReadInferenceConfiguration",
                actions=["lambda:GetFunctionConfiguration"],
                resources=[inference.function.function_arn],
            ),
            iam.PolicyStatement(
                sid="PauseAndResumeTrigger",
                actions=["lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"],
                resources=[mapping_arn],
            ),
            iam.PolicyStatement(
                # The backlog; and while the trigger is paused, the waiting messages sent again before the
                # queue's retention would drop them.
                sid="WatchAndRefreshBacklog",
                actions=[
                    "sqs:GetQueueAttributes",
                    "sqs:ReceiveMessage",
                    "sqs:SendMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                ],
                resources=[ingest.queue.queue_arn],
            ),
            iam.PolicyStatement(
                sid="UseQueueKey", actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[ingest.key.key_arn]
            ),
            iam.PolicyStatement(
                sid="RememberState",
                actions=["ssm:GetParameter", "ssm:PutParameter"],
                resources=[self.state.parameter_arn],
            ),
        ]
        lifecycle = config.function.spec.lifecycle
        model = config.function.model
        statements += grant_statements(lifecycle.grants(model, StackArns(stack), config.auto_mode))
        for statement in statements:
            self.role.add_to_policy(statement)
        acknowledge_wildcards(self.role, wildcard_reasons(lifecycle.grants(model, NagArns(stack), config.auto_mode)))

        # The controller's settings from context, with the names of the resources it watches.
        controller = replace(
            config.controller,
            function_name=inference.function.function_name,
            queue_url=ingest.queue.queue_url,
            mapping_id=inference.trigger.event_source_mapping_id,
            state_parameter=self.state.parameter_name,
        )
        platform = platform_environment(tracing=False, max_attempts=config.retry_max_attempts)
        environment = {**controller.to_env(), **{name: platform[name] for name in PLATFORM_SETTINGS}}
        self.function = lambda_.Function(
            self,
            "Function",
            description="Pauses the image trigger while the model cannot answer; starts/stops it in auto mode",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=inference.code,
            memory_size=256,
            timeout=Duration.seconds(30),
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            # No reserved concurrency: new accounts cannot reserve any. A run takes well under the minute
            # between runs, and a second start of a starting model is refused by the service.
            environment=environment,
        )
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Runs the model controller every minute",
            schedule=events.Schedule.rate(Duration.minutes(SCHEDULE_MINUTES)),
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
        )
