"""Alarms an operator needs: something is dead-lettered, work is piling up, the function fails, the model's
answers cannot be used."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from lambdas.contract import errors
from lambdas.contract.settings import METRICS_NAMESPACE, SERVICE_NAME

# Notifications should be picked up within seconds; a backlog older than ``maxWaitMinutes`` (15 by default,
# 45 in auto mode, where a start takes up to 30) means the model is not running or not keeping up.


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        function: lambda_.IFunction,
        controller: lambda_.IFunction,
        max_wait_minutes: int,
        key: kms.Key,
        alarm_topic_arn: str | None = None,
        alarm_email: str | None = None,
        near_threshold_share: float | None = None,
        outcome_stream_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.topic = (
            sns.Topic.from_topic_arn(self, "AlarmTopic", alarm_topic_arn)
            if alarm_topic_arn
            else self._own_topic(key, alarm_email)
        )
        self._actions: list[cloudwatch.IAlarmAction] = [cloudwatch_actions.SnsAction(self.topic)]
        self.dlq_alarm = self._above(
            "DeadLetters",
            "Images are in the dead-letter queue: inspect them, fix the cause, then redrive",
            dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            threshold=0,
            periods=1,
        )
        self.backlog_alarm = self._above(
            "OldestMessageAge",
            f"Images have waited more than {max_wait_minutes} min: the model is stopped, starting, missing or "
            "not keeping up (inferctl model status)",
            queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(1), statistic="Maximum"),
            threshold=max_wait_minutes * 60,
            periods=1,
        )
        # A model answering in a shape nobody can read (misconfigured response format, a broken model): each
        # image gets an error document after one call, and this alarm says so at once.
        unusable = {
            code.lower(): cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=f"Error_{code}",
                dimensions_map={"service": SERVICE_NAME},
                statistic="Sum",
                period=Duration.minutes(5),
            )
            for code in (errors.RESPONSE_FORMAT_UNKNOWN, errors.MODEL_OUTPUT_INVALID)
        }
        self.model_output_alarm = self._above(
            "ModelOutputUnusable",
            "The model answers in a shape or with values no label can come from: check SAGEMAKER_RESPONSE_FORMAT "
            "and the model, then reprocess the error documents",
            cloudwatch.MathExpression(
                expression=" + ".join(unusable), using_metrics=dict(unusable), period=Duration.minutes(5)
            ),
            threshold=0,
            periods=1,
        )
        self.errors_alarm = self._above(
            "FunctionErrors",
            "The function fails whole invocations (configuration error or crash)",
            function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            threshold=0,
            periods=1,
        )
        self.near_threshold_alarm = (
            self._near_threshold(near_threshold_share) if near_threshold_share is not None else None
        )
        if outcome_stream_name is not None:
            self._outcome_rows(outcome_stream_name)
        # One failed run is retried a minute later; three in a row mean nobody resumes the trigger.
        self.controller_alarm = self._above(
            "ModelControllerErrors",
            "The model controller fails: the trigger is not paused or resumed and the model not started or "
            "stopped; see its log group",
            controller.metric_errors(period=Duration.minutes(1), statistic="Sum"),
            threshold=0,
            periods=3,
        )

    def _outcome_rows(self, stream_name: str) -> None:
        """The outcome table falls behind: the stream refused rows (their records are retried; the alarm says the
        stream is failing or throttled), or Firehose cannot convert or deliver what it took."""
        self.rows_refused_alarm = self._above(
            "OutcomeRowsRefused",
            "The outcome stream refused rows: their images are retried until it takes them (inferctl audit "
            "--reconcile finds any row still missing from the table)",
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="OutcomeRowsFailed",
                dimensions_map={"service": SERVICE_NAME},
                statistic="Sum",
                period=Duration.minutes(5),
            ),
            threshold=0,
            periods=1,
        )

        def delivery(name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/Firehose",
                metric_name=name,
                dimensions_map={"DeliveryStreamName": stream_name},
                statistic=statistic,
                period=Duration.minutes(5),
            )

        self.rows_conversion_alarm = self._above(
            "OutcomeRowsNotConverted",
            "Firehose could not convert rows to Parquet (they are under errors/ in the analytics bucket): the "
            "table's schema and the function's rows disagree",
            delivery("FailedConversion.Records", "Sum"),
            threshold=0,
            periods=1,
        )
        self.rows_freshness_alarm = self._above(
            "OutcomeRowsLate",
            "Rows wait more than an hour in the outcome stream: Firehose cannot write to the analytics bucket "
            "(see the stream's delivery logs)",
            delivery("DeliveryToS3.DataFreshness", "Maximum"),
            threshold=3600,
            periods=1,
        )

    def _own_topic(self, key: kms.Key, email: str | None) -> sns.Topic:
        """Somebody is told by default: without ``alarmTopicArn`` the stack makes its own topic (encrypted with the
        stack's key, TLS only) and subscribes ``alarmEmail`` to it when given. Images waiting on a stopped or
        missing model would otherwise sit unseen until the queue's retention (the controller keeps them past it)."""
        topic = sns.Topic(self, "Alarms", display_name="Image inference alarms", master_key=key, enforce_ssl=True)
        stack = Stack.of(self)
        # CloudWatch publishes the alarms: the topic policy (which enforce_ssl creates) must let it, and the key
        # must let it encrypt (as the CloudWatch User Guide writes both statements).
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
                    },
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsEncrypt",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        if email:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    def _near_threshold(self, share: float) -> cloudwatch.Alarm:
        """More than ``share`` of a day's images have a candidate within 10 points below its threshold: what
        the model says has moved towards the thresholds, and a review round is due."""

        def daily(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map={"service": SERVICE_NAME},
                statistic="Sum",
                period=Duration.days(1),
            )

        return self._above(
            "NearThresholdShare",
            f"More than {100 * share:g}% of a day's images have a candidate just below its threshold: review a "
            "sample (inferctl review) and see what moved (inferctl drift)",
            cloudwatch.MathExpression(
                expression="near / processed",  # no images: no data, which is not breaching
                using_metrics={"near": daily("NearThresholdImages"), "processed": daily("ImagesProcessed")},
                period=Duration.days(1),
            ),
            threshold=share,
            periods=1,
        )

    def _above(
        self, construct_id: str, description: str, metric: cloudwatch.IMetric, *, threshold: float, periods: int
    ) -> cloudwatch.Alarm:
        """An alarm when the metric stays above the threshold; no data (nothing happening) is fine."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for action in self._actions:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        return alarm
