"""Cost arithmetic, checked on hand-computed cases: the model's unit-hours per traffic profile with and without
auto mode, the serverless part per image, and a deployed stack's spend from CloudWatch metrics (moto)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from inferctl import pricing


def test_always_on_is_24_unit_hours_a_day_whatever_the_traffic():
    for profile in pricing.PROFILES:
        assert pricing.rekognition_model_hours(profile, 2, 5.0, None) == 48.0


def test_one_burst_a_day_in_auto_mode_runs_for_schedule_start_work_and_idle_time():
    # 1 min schedule + 10 min start + 1,000 images at 5/s (200 s) + 15 min idle = 1,860 s + 200 s
    hours = pricing.rekognition_model_hours(pricing.Profile("burst", 1000, 1), 1, 5.0, pricing.AutoMode())
    assert hours == pytest.approx((60 + 600 + 200 + 900) / 3600)
    saving = 24 / hours
    assert saving == pytest.approx(49.09, abs=0.01)


def test_a_trickle_more_frequent_than_the_idle_time_never_stops_the_model():
    trickle = pricing.Profile("trickle", 1000, 1000)  # one image every 86.4 s < 15 min idle
    assert pricing.rekognition_model_hours(trickle, 1, 5.0, pricing.AutoMode()) == 24.0


def test_the_serverless_part_prices_each_measured_count():
    per_image = pricing.PerImage(
        lambda_seconds=0.5,
        lambda_requests=0.1,
        sqs_requests=3,
        s3_puts=1,
        s3_gets=3,
        kms_requests=0.1,
        log_bytes=1024**3 / 1000,
        memory_mb=2048,
    )
    parts = per_image.cost()
    assert parts["lambda"] == pytest.approx(0.5 * 2 * 0.0000133334 + 0.1 * 0.2e-6)
    assert parts["sqs"] == pytest.approx(3 * 0.4e-6)
    assert parts["s3"] == pytest.approx(0.005 / 1000 + 3 * 0.0004 / 1000)
    assert parts["kms"] == pytest.approx(0.1 * 0.03 / 10_000)
    assert parts["logs"] == pytest.approx(0.5 / 1000)


def test_serverless_sagemaker_bills_gb_seconds_and_data():
    assert pricing.sagemaker_serverless_per_image(4096, 0.5, 1024**3) == pytest.approx(4 * 0.5 * 0.00002 + 0.016)
    assert pricing.sagemaker_realtime_per_day("ml.m5.xlarge", 2) == pytest.approx(2 * 24 * 0.23)


@mock_aws
def test_a_deployed_stacks_spend_comes_from_its_metrics():
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    now = datetime.now(UTC)
    when = now - timedelta(hours=2)

    def put(namespace, name, dimensions, value):
        cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                    "Timestamp": when,
                    "Value": value,
                }
            ],
        )

    put("AWS/Lambda", "Invocations", {"FunctionName": "fn"}, 100)
    put("AWS/Lambda", "Duration", {"FunctionName": "fn"}, 200_000)  # ms
    put("AWS/SQS", "NumberOfMessagesSent", {"QueueName": "q"}, 2000)
    put("AWS/SQS", "NumberOfEmptyReceives", {"QueueName": "q"}, 500)
    put("ImageInference", "ImagesProcessed", {"service": "image-inference"}, 990)
    put("ImageInference", "ImagesFailed", {"service": "image-inference"}, 10)
    put("ImageInference", "ModelReady", {"service": "model-controller"}, 90)  # 90 one-minute samples

    spend = pricing.spend_from_metrics(
        cloudwatch,
        function_name="fn",
        memory_mb=1024,
        queue_name="q",
        backend="rekognition",
        units=2,
        days=1,
        end=now,
    )
    assert spend.images == 1000
    assert spend.parts["lambda"] == pytest.approx(200 * 0.0000133334 + 100 * 0.2e-6)
    assert spend.parts["sqs"] == pytest.approx((2000 + 500 + 200) * 0.4e-6)
    assert spend.parts["model (unit-hours)"] == pytest.approx(1.5 * 2 * 4.0)
    assert spend.per_thousand()["model (unit-hours)"] == pytest.approx(12.0)
