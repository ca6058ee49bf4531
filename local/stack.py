"""The embedded stack: emulator, resources, model endpoint, and the real handler on a local SQS trigger.

``embedded_stack(config)`` is what ``make demo`` and the end-to-end tests run. Everything it starts is
stopped when the block exits.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacks.config import StackConfig

from . import model_server
from .emulator import Emulator, embedded_aws, patched_environ
from .event_source import BatchReport, SqsTrigger
from .resources import Resources, provision

FUNCTION_NAME = "image-inference-embedded"
LOG_GROUP = f"/aws/lambda/{FUNCTION_NAME}"
DEMO_ENDPOINT = "demo-shapes"
# A well-formed model version ARN for the local DetectCustomLabels endpoint (there is no real model).
DEMO_MODEL_ARN = (
    "arn:aws:rekognition:us-east-1:123456789012:project/image-inference/version/demo-shapes.2026-11-23T00.00.00"
    "/1795392000000"
)


def demo_config(overrides: dict[str, Any] | None = None) -> StackConfig:
    """cdk.json's configuration pointed at the local demo model, plus overrides. SageMaker by default;
    ``-c backend=rekognition`` uses the local DetectCustomLabels endpoint instead."""
    from .demo_model import CLASS_NAMES

    context: dict[str, Any] = {
        "backend": "sagemaker",
        "sagemakerEndpointName": DEMO_ENDPOINT,
        "sagemakerResponseFormat": "object-detection",
        "sagemakerClassNames": CLASS_NAMES,
        "rekognitionModelArn": DEMO_MODEL_ARN,
    }
    context.update(overrides or {})
    return StackConfig.from_cdk_json(context)


class LambdaLogs(io.TextIOBase):
    """Where the function's stdout goes: a local file and the emulator's CloudWatch Logs, like Lambda."""

    def __init__(self, logs_client: Any, path: Path | None) -> None:
        self._logs = logs_client
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8") if path else None
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        with contextlib.suppress(logs_client.exceptions.ResourceAlreadyExistsException):
            logs_client.create_log_group(logGroupName=LOG_GROUP)  # emulator state outlives one stack
        logs_client.create_log_stream(logGroupName=LOG_GROUP, logStreamName=self._stream)

    def write(self, text: str) -> int:
        with self._lock:
            if self._file:
                self._file.write(text)
            self._pending.extend(line for line in text.splitlines() if line.strip())
        return len(text)

    def ship(self) -> None:
        with self._lock:
            lines, self._pending = self._pending, []
        if lines:
            now = int(time.time() * 1000)
            self._logs.put_log_events(
                logGroupName=LOG_GROUP,
                logStreamName=self._stream,
                logEvents=[{"timestamp": now, "message": line} for line in lines],
            )

    def close(self) -> None:
        self.ship()
        if self._file:
            self._file.close()
        super().close()


@dataclass
class EmbeddedStack:
    emulator: Emulator
    resources: Resources
    config: StackConfig
    trigger: SqsTrigger
    model_endpoint_url: str | None
    session: Any
    reports: list[BatchReport] = field(default_factory=list)

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def state(self) -> dict[str, Any]:
        """What the CLI needs to find this stack (like a deployed stack's outputs)."""
        return {
            "endpoint_url": self.emulator.endpoint_url,
            "region": self.emulator.region,
            "BucketName": self.resources.bucket,
            "InputPrefix": self.resources.input_prefix,
            "QueueUrl": self.resources.queue_url,
            "DeadLetterQueueUrl": self.resources.dead_letter_queue_url,
            "FunctionName": FUNCTION_NAME,
            "LogGroupName": LOG_GROUP,
        }


def lambda_environment(resources: Resources, config: StackConfig, model_endpoint_url: str | None) -> dict[str, str]:
    env = {
        **config.lambda_environment(),
        "RESULT_KMS_KEY_ARN": resources.key_arn,
        "POWERTOOLS_SERVICE_NAME": "image-inference",
        "POWERTOOLS_METRICS_NAMESPACE": "ImageInference",
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
    }
    for variable in ("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_ENDPOINT_URL_REKOGNITION"):
        # A model server the user already points at wins over the built-in demo model.
        chosen = os.environ.get(variable) or model_endpoint_url
        if chosen:
            env[variable] = chosen
    return env


@contextlib.contextmanager
def embedded_stack(
    config: StackConfig,
    *,
    log_path: Path | None = None,
    models: dict[str, model_server.Model] | None = None,
    rekognition_model: Callable[[bytes], list[list[float]]] | None = None,
    poll_wait_seconds: int = 1,
    start_trigger: bool = True,
    capture_stdout: bool = False,
) -> Iterator[EmbeddedStack]:
    """Start everything; yield the running stack; stop everything, whatever happens.

    ``capture_stdout`` sends this process's stdout to the function's logs while the stack runs (what the
    function prints, like EMF metrics, goes there on Lambda); only for callers that print nothing else.
    """
    serve_models: dict[str, model_server.Model] = {DEMO_ENDPOINT: model_server.demo} if models is None else models
    with contextlib.ExitStack() as stack:
        emulator = stack.enter_context(embedded_aws())
        session = emulator.session()
        s3 = session.client("s3")

        def fetch(bucket: str, key: str, version: str | None) -> bytes:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, **({"VersionId": version} if version else {})}
            data: bytes = s3.get_object(**kwargs)["Body"].read()
            return data

        rekognition = None
        if config.rekognition_model_arn:
            rekognition = model_server.RekognitionModel(config.rekognition_model_arn, fetch, rekognition_model)
        endpoint_url = stack.enter_context(model_server.model_endpoint(serve_models, rekognition))
        resources = provision(session, config)
        logs = LambdaLogs(session.client("logs"), log_path)
        stack.callback(logs.close)
        if capture_stdout:
            stack.enter_context(contextlib.redirect_stdout(logs))
        stack.enter_context(patched_environ(lambda_environment(resources, config, endpoint_url)))

        from lambdas.inference import handler as lambda_module

        lambda_module.runtime.cache_clear()  # read this stack's configuration, as a fresh container would
        stack.callback(lambda_module.runtime.cache_clear)
        log_handler: Any = lambda_module.logger.registered_handler
        previous_stream = log_handler.setStream(logs)  # the function's log lines go to its log group
        stack.callback(log_handler.setStream, previous_stream)

        def invoke(event: dict[str, Any], context: Any) -> Any:
            try:
                return lambda_module.lambda_handler(event, context)
            finally:
                logs.ship()

        embedded = EmbeddedStack(
            emulator=emulator,
            resources=resources,
            config=config,
            trigger=None,  # type: ignore[arg-type]
            model_endpoint_url=endpoint_url,
            session=session,
        )
        embedded.trigger = SqsTrigger(
            session.client("sqs"),
            queue_url=resources.queue_url,
            queue_arn=resources.queue_arn,
            region=resources.region,
            handler=invoke,
            batch_size=config.batch_size,
            batching_window_seconds=config.max_batching_window_seconds,
            function_timeout_seconds=config.lambda_timeout_seconds,
            function_name=FUNCTION_NAME,
            poll_wait_seconds=poll_wait_seconds,
            on_batch=embedded.reports.append,
        )
        if start_trigger:
            thread, stop = embedded.trigger.start()

            def halt() -> None:
                stop.set()
                thread.join()

            stack.callback(halt)
        yield embedded


def write_state(stack: EmbeddedStack, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stack.state(), indent=2), encoding="utf-8")
