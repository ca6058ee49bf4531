"""The stack: ingest (key, buckets, queues, notifications), the inference function, and its alarms."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Stack, Validations
from constructs import Construct

from stacks.analytics import OutcomeTable
from stacks.config import StackConfig
from stacks.controller import ModelController
from stacks.function import InferenceFunction
from stacks.ingest import Ingest
from stacks.monitoring import Monitoring


class ImageInferenceStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StackConfig, bundle: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.ingest = Ingest(self, "Ingest", config=config)
        # Before the function: its environment names the stream, its role may put to it.
        self.outcomes = (
            OutcomeTable(self, "Outcomes", config=config, ingest=self.ingest) if config.outcome_table else None
        )
        self.inference = InferenceFunction(
            self, "Inference", config=config, ingest=self.ingest, bundle=bundle, outcomes=self.outcomes
        )
        self.controller = ModelController(
            self, "ModelController", config=config, ingest=self.ingest, inference=self.inference
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            queue=self.ingest.queue,
            dead_letter_queue=self.ingest.dead_letter_queue,
            function=self.inference.function,
            controller=self.controller.function,
            max_wait_minutes=config.max_wait_minutes,
            key=self.ingest.key,
            alarm_topic_arn=config.alarm_topic_arn,
            alarm_email=config.alarm_email,
            near_threshold_share=config.near_threshold_alarm_share,
            outcome_stream_name=self.outcomes.stream.ref if self.outcomes else None,
        )

        outputs = {
            "BucketName": (self.ingest.bucket.bucket_name, "Drop images here"),
            "InputPrefix": (config.input_prefix, "Key prefix that triggers inference"),
            "QueueUrl": (self.ingest.queue.queue_url, "Queue of S3 notifications"),
            "DeadLetterQueueUrl": (self.ingest.dead_letter_queue.queue_url, "Images that failed repeatedly"),
            "FunctionName": (self.inference.function.function_name, "Inference function"),
            "KeyArn": (self.ingest.key.key_arn, "KMS key for images, results and queues"),
            "AlarmTopicArn": (self.monitoring.topic.topic_arn, "Every alarm notifies this topic (alarm and OK)"),
            "EventSourceMappingId": (
                self.inference.trigger.event_source_mapping_id,
                "SQS trigger the model controller pauses while the model cannot answer",
            ),
            "ControllerFunctionName": (self.controller.function.function_name, "Model controller (every minute)"),
            "ControllerStateParameter": (
                self.controller.state.parameter_name,
                "What the model controller remembers (state since, idle since)",
            ),
        }
        if self.outcomes is not None:
            outputs.update(self.outcomes.outputs(self.ingest))
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)
        self._acknowledge_nag_findings()

    def _acknowledge_nag_findings(self) -> None:
        """Each acknowledgement says why the finding does not apply here."""
        Validations.of(self.ingest.access_logs).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-S1",
                reason="This is the access-log bucket; logging its own access would recurse",
            )
        )
        # CDK's singleton that applies bucket notifications (Custom::S3BucketNotifications).
        for child in self.node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                Validations.of(child).acknowledge(
                    Acknowledgment(
                        id=(
                            "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                            "service-role/AWSLambdaBasicExecutionRole]"
                        ),
                        reason="CDK-managed handler that writes the bucket notification configuration at deploy time; "
                        "the basic execution policy only lets it write its own logs",
                    )
                )
