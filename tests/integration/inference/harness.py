"""Drive the real handler against moto resources built by ``inferctl.emulator.resources``, one receive
at a time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from inferctl.emulator.resources import Resources
from inferctl.emulator.runtime import LambdaContext, sqs_event
from lambdas.contract.settings import Settings
from lambdas.inference import environment, handler
from lambdas.inference.backends import InferenceBackend
from lambdas.inference.storage import S3Storage

MODEL_ARN = (
    "arn:aws:rekognition:us-east-1:123456789012:project/image-inference/version/v1.2024-01-01T00.00.00/1700000000000"
)


@dataclass
class Delivery:
    event: dict[str, Any]
    response: dict[str, Any]

    @property
    def failed_ids(self) -> list[str]:
        return [item["itemIdentifier"] for item in self.response["batchItemFailures"]]

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(record["body"]) for record in self.event["Records"]]


def settings_env(resources: Resources, **overrides: str) -> dict[str, str]:
    env = {
        "BACKEND": "rekognition",
        "REKOGNITION_MODEL_ARN": MODEL_ARN,
        "INPUT_PREFIX": resources.input_prefix,
        "MIN_CONFIDENCE": "50",
        "RESULT_KMS_KEY_ARN": resources.key_arn,
        "RECORD_CONCURRENCY": "4",
    }
    env.update(overrides)
    return env


def install_runtime(monkeypatch: Any, session: Any, env: dict[str, str], backend: InferenceBackend) -> None:
    """Make ``handler.runtime()`` return a runtime with these settings, this backend and moto's S3."""
    settings = Settings.from_env(env)
    runtime = environment.build_runtime(
        settings, backend=backend, storage=S3Storage(session.client("s3"), kms_key_arn=settings.result_kms_key_arn)
    )
    monkeypatch.setattr(handler, "runtime", lambda: runtime)


def receive_all(session: Any, resources: Resources, max_messages: int = 10) -> list[dict[str, Any]]:
    sqs = session.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=resources.queue_url,
            MaxNumberOfMessages=min(10, max_messages - len(messages)),
            AttributeNames=["All"],
        ).get("Messages", [])
        messages.extend(batch)
        if not batch or len(messages) >= max_messages:
            return messages


def deliver(session: Any, resources: Resources, max_messages: int = 10) -> Delivery:
    """One trigger invocation: receive, invoke, delete the successes (as Lambda's SQS trigger does)."""
    messages = receive_all(session, resources, max_messages)
    event = sqs_event(messages, resources.queue_arn, resources.region)
    response = handler.lambda_handler(event, LambdaContext())
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    sqs = session.client("sqs")
    for message in messages:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=resources.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return Delivery(event=event, response=response)


def read_json(session: Any, bucket: str, key: str) -> dict[str, Any]:
    body = session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    document: dict[str, Any] = json.loads(body)
    return document
