"""Alarms an operator needs: something is dead-lettered, work is piling up, the function fails."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# Notifications should be picked up within seconds; 15 minutes of backlog means the function is not keeping
# up (model stopped or throttled, concurrency too low) and is worth a look before messages dead-letter.
OLDEST_MESSAGE_ALARM_SECONDS = 15 * 60


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        function: lambda_.IFunction,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.dlq_alarm = cloudwatch.Alarm(
            self,
            "DeadLetters",
            alarm_description="Images are in the dead-letter queue: inspect them, fix the cause, then redrive",
            metric=dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.backlog_alarm = cloudwatch.Alarm(
            self,
            "OldestMessageAge",
            alarm_description="Images wait too long in the queue: the model may be stopped or throttled",
            metric=queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(1), statistic="Maximum"),
            threshold=OLDEST_MESSAGE_ALARM_SECONDS,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=5,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.errors_alarm = cloudwatch.Alarm(
            self,
            "FunctionErrors",
            alarm_description="The function fails whole invocations (configuration error or crash)",
            metric=function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
