"""Row 7: cost per 1,000 images. The serverless part is measured: images go through the embedded stack and
every AWS call the function makes is counted (botocore's ``before-call`` on boto3's default session, which
the function's clients use), with the trigger's receives and deletes, the function's time per batch and the
bytes it logs. The model's part follows from traffic profiles and the price table (``inferctl/pricing.py``)."""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3

from inferctl import pricing
from inferctl.emulator.stack import embedded_stack
from inferctl.scenarios.burst import small_jpeg
from inferctl.scenarios.demo.run import demo_config, demo_models
from inferctl.stack import uploads
from inferctl.stack.target import from_outputs

# Rekognition reads a by-reference image from S3 itself: one GET per image billed to the bucket's owner,
# which the emulator's model does not make through the function.
REKOGNITION_S3_GETS_PER_IMAGE = 1
# KMS: with an S3 Bucket Key and SQS data-key reuse, requests are per key period, not per object; AWS quotes
# up to 99% fewer. Counted as 1 request per 100 S3/SQS operations.
KMS_SHARE = 0.01
# The AWS CLI's default max_concurrent_requests: how `aws s3 cp --recursive` uploads a folder.
UPLOADS_AT_ONCE = 10


def measure(count: int = 100) -> dict[str, Any]:
    calls: Counter[str] = Counter()
    lock = threading.Lock()

    def count_call(model: Any, **kwargs: Any) -> None:
        with lock:
            calls[f"{model.service_model.service_name}:{model.name}"] += 1

    boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("before-call", count_call)
    config = demo_config({"backend": "rekognition", "inferenceUnits": 10})
    durations: list[float] = []
    items = [(f"cost/{index:04d}.jpg", small_jpeg(index % 50)) for index in range(count)]
    try:
        with tempfile.TemporaryDirectory() as folder:
            log_path = Path(folder) / "lambda.log"
            with embedded_stack(config, demo_models(), log_path=log_path, capture_stdout=True) as stack:
                handler = stack.trigger.handler

                def timed(event: dict[str, Any], context: Any) -> Any:
                    started = time.perf_counter()
                    try:
                        return handler(event, context)
                    finally:
                        durations.append(time.perf_counter() - started)

                stack.trigger.handler = timed
                target = from_outputs(stack.session, stack.state(), None, "embedded")
                # Dropped as a folder is dropped with the AWS CLI, UPLOADS_AT_ONCE at a time: one at a time, how full
                # the batches were (so 7b and 7c) followed this machine's PUT speed against the function's.
                sent = uploads.upload_many(target, items, progress=False, concurrency=UPLOADS_AT_ONCE)
                uploads.wait_for(target, [u.key for u in sent], timeout=600, progress=False, poll_seconds=1)
                stats = stack.trigger.stats
                log_bytes = log_path.stat().st_size
    finally:
        session.events.unregister("before-call", count_call)
    s3_gets = sum(n for name, n in calls.items() if name.startswith("s3:") and not name.startswith("s3:Put"))
    s3_puts = sum(n for name, n in calls.items() if name.startswith("s3:Put"))
    function_sqs = sum(n for name, n in calls.items() if name.startswith("sqs:"))
    # The trigger: a ReceiveMessage and a DeleteMessageBatch per batch; EventBridge sends one message per
    # message received (the rule matches images only: results send none; ``stats.received`` counts them).
    sqs = stats.batches * 2 + function_sqs + stats.received
    per_image = pricing.PerImage(
        lambda_seconds=sum(durations) / count,
        lambda_requests=stats.batches / count,
        sqs_requests=sqs / count,
        s3_puts=s3_puts / count,
        s3_gets=s3_gets / count + REKOGNITION_S3_GETS_PER_IMAGE,
        kms_requests=KMS_SHARE * (s3_gets + s3_puts + sqs) / count,
        log_bytes=log_bytes / count,
        memory_mb=config.lambda_memory_mb,
    )
    return {"images": count, "calls": dict(calls), "per_image": per_image, "batches": stats.batches}


def calls_rows(measured: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Rows 7a-7c: the function's own S3 calls, SQS requests and invocations per image (targets from the
    performance issue: the floor is one model call and one S3 write; one message per image)."""
    count, calls = measured["images"], measured["calls"]
    gets = sum(n for name, n in calls.items() if name.startswith("s3:") and not name.startswith("s3:Put")) / count
    puts = sum(n for name, n in calls.items() if name.startswith("s3:Put")) / count
    per_image: pricing.PerImage = measured["per_image"]
    return [
        (
            "7a S3 calls per image, the function's own (Rekognition by reference)",
            f"{gets:.2f} GET + {puts:.2f} PUT (Rekognition's own read of the image: "
            f"+{REKOGNITION_S3_GETS_PER_IMAGE} GET, billed to the bucket)",
            "<= 1 GET + 1 PUT",
            "met" if gets <= 1 and puts <= 1 else "MISSED",
        ),
        (
            "7b SQS requests per image",
            f"{per_image.sqs_requests:.2f} (one send by EventBridge, a share of a receive and of a delete; "
            f"uploaded {UPLOADS_AT_ONCE} at a time)",
            "<= 2",
            "met" if per_image.sqs_requests <= 2 else "MISSED",
        ),
        (
            "7c Lambda invocations per image",
            f"{per_image.lambda_requests:.3f} ({measured['batches']} batches for {count} images)",
            "report",
            "-",
        ),
    ]


def table(measured: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Rows: the serverless part per 1,000 images, then each backend and profile, with auto mode's saving."""
    per_image: pricing.PerImage = measured["per_image"]
    parts = per_image.cost()
    serverless = 1000 * sum(parts.values())
    fixed = sum(pricing.fixed_per_day().values())
    detail = ", ".join(f"{name} {1000 * value:.4f}" for name, value in parts.items())
    rows = [
        (
            "7 serverless part per 1,000 images (measured)",
            f"USD {serverless:.4f} ({detail}); {per_image.lambda_seconds * 1000:.0f} ms Lambda, "
            f"{per_image.s3_gets:.1f} GET, {per_image.s3_puts:.1f} PUT, {per_image.sqs_requests:.1f} SQS per image; "
            f"+ USD {fixed:.3f}/day fixed (trigger polls, controller, metrics)",
            "report",
            "-",
        )
    ]
    auto = pricing.AutoMode()
    units, calls_per_second = 1, 5.0
    for profile in pricing.PROFILES:
        always = (
            pricing.rekognition_model_hours(profile, units, calls_per_second, None)
            * pricing.PRICES.rekognition_unit_hour
        )
        with_auto = (
            pricing.rekognition_model_hours(profile, units, calls_per_second, auto)
            * pricing.PRICES.rekognition_unit_hour
        )
        per_k = pricing.per_thousand(always, profile.images) + serverless
        per_k_auto = pricing.per_thousand(with_auto, profile.images) + serverless
        rows.append(
            (
                f"7 Rekognition 1 unit, {profile.name}",
                f"always on USD {per_k:.2f}; auto mode USD {per_k_auto:.2f} per 1,000 images "
                f"= {per_k / per_k_auto:.1f}x saving",
                "report",
                "-",
            )
        )
    realtime = pricing.per_thousand(pricing.sagemaker_realtime_per_day("ml.m5.xlarge", 1), 1000) + serverless
    serverless_model = 1000 * pricing.sagemaker_serverless_per_image(4096, 0.3, 200_000) + serverless
    rows.append(
        (
            "7 SageMaker, 1,000/day (any profile)",
            f"real-time ml.m5.xlarge x1 USD {realtime:.2f}; serverless 4 GB, 0.3 s/image USD {serverless_model:.2f} "
            f"per 1,000 images (cold starts: first image after idle waits)",
            "report",
            "-",
        )
    )
    rows.append(
        (
            "7 prices",
            f"us-east-1 list prices as of {pricing.PRICES_AS_OF}; auto mode: start billed {auto.start_minutes:g} min, "
            f"idle stop after {auto.idle_minutes:g} min; sources in inferctl/pricing.py",
            "-",
            "-",
        )
    )
    return rows
