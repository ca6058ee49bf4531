"""The embedded stack: emulator, resources, local model services, and the real handler on a local SQS trigger.

``embedded_stack(config, models)`` is what ``make demo``, ``serve``, the fault run and the end-to-end tests
run. It knows nothing about the demo: the models it serves are given. Everything it starts is stopped when
the block exits.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from inferctl.emulator.clock import EmulatedClock
from inferctl.emulator.isolation import ProcessInvoker, Report
from inferctl.emulator.lambda_api import LambdaApi, LocalFunction, LocalMapping
from inferctl.emulator.metrics import Metrics
from inferctl.emulator.models import emulations
from inferctl.emulator.models.base import LocalLifecycle, LocalModel
from inferctl.emulator.resources import EMBEDDED_ROWS_PREFIX, Resources, provision
from inferctl.emulator.runtime import LambdaLogs
from inferctl.emulator.server import FAKE_CREDENTIALS, Emulator, embedded_aws, patched_environ
from inferctl.emulator.services import LocalModels, local_services
from inferctl.emulator.trigger import BatchReport, SqsTrigger
from lambdas.controller.decide import Decision
from stacks.config import StackConfig

TABLE_FOLDER = "outcome-table"  # beside the state file: the outcome table's rows as DuckDB reads them

FUNCTION_NAME = "image-inference-embedded"
LOG_GROUP = f"/aws/lambda/{FUNCTION_NAME}"
CONTROLLER_STATE_PARAMETER = "/image-inference-embedded/model-controller/state"


@dataclass
class EmbeddedStack:
    emulator: Emulator
    resources: Resources
    config: StackConfig
    trigger: SqsTrigger
    services_url: str
    session: Any
    function: LocalFunction
    mapping: LocalMapping
    deployed_environment: dict[str, str]
    reports: list[BatchReport] = field(default_factory=list)
    models: LocalModels | None = None
    decisions: list[Decision] = field(default_factory=list)  # the model controller's, oldest first
    invocations: list[Report] = field(default_factory=list)  # isolation="process": one REPORT per invocation
    invoker: ProcessInvoker | None = None  # isolation="process" or "warm": the function's execution environments

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def state(self) -> dict[str, Any]:
        """What the operator tool needs to find this stack (like a deployed stack's outputs)."""
        return {
            "endpoint_url": self.emulator.endpoint_url,
            "region": self.emulator.region,
            "credentials": dict(FAKE_CREDENTIALS),  # the emulator's own, for boto3 and the AWS CLI
            "BucketName": self.resources.bucket,
            "InputPrefix": self.resources.input_prefix,
            "QueueUrl": self.resources.queue_url,
            "DeadLetterQueueUrl": self.resources.dead_letter_queue_url,
            "FunctionName": FUNCTION_NAME,
            "LogGroupName": LOG_GROUP,
            "KeyArn": self.resources.key_arn,
            "EventSourceMappingId": self.mapping.uuid,
            "ControllerStateParameter": CONTROLLER_STATE_PARAMETER,
            **(
                {
                    "OutcomeBucketName": self.resources.outcome_bucket,
                    "OutcomeStreamName": self.resources.outcome_stream,
                    "OutcomeRowsPrefix": EMBEDDED_ROWS_PREFIX,
                }
                if self.resources.outcome_bucket
                else {}
            ),
            "services_url": self.services_url,  # the Lambda control plane and the model services
            "deployed_environment": self.deployed_environment,  # what "the stack" set, for drift
        }


def lambda_environment(resources: Resources, config: StackConfig, services_url: str) -> dict[str, str]:
    """The function's environment as the stack writes it, plus what Lambda itself sets."""
    env = {
        **config.lambda_environment(),
        "RESULT_KMS_KEY_ARN": resources.key_arn,
        "QUEUE_URL": resources.queue_url,
        **({"OUTCOME_STREAM_NAME": resources.outcome_stream} if resources.outcome_stream else {}),
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.lambda_memory_mb),
    }
    for emulation in emulations().values():
        variable = emulation.endpoint_variable
        # A model server the user already points at wins over the local services (another embedded stack's,
        # set in this process by that stack, does not).
        chosen = os.environ.get(variable)
        env[variable] = chosen if chosen and chosen not in _SERVICES_URLS else services_url
    return env


_SERVICES_URLS: set[str] = set()  # every embedded stack's local services in this process

# The function's own noise, which on Lambda lands in its log and here would land on the operator's terminal:
# Powertools on a batch that published no metric, Pillow on a photo whose EXIF block is damaged (read anyway).
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
warnings.filterwarnings("ignore", message="Corrupt EXIF data", category=UserWarning)


@contextlib.contextmanager
def _one_metric_store_at_a_time(metrics: Any) -> Iterator[None]:
    """Powertools keeps one metric set per process; on Lambda one invocation at a time uses it. Here execution
    environments are threads of one process: two flushing at once printed one set twice (seen under load: 14
    ImagesProcessed for 12 results) or failed the second invocation (it serialised a set the first had just
    cleared), and a metric added during another's flush was cleared unprinted. Adding and flushing take one
    lock, so each metric is printed once (on the provider: the ``log_metrics`` decorator flushes through it)."""
    store = getattr(metrics, "provider", metrics)
    lock = threading.RLock()
    originals = {name: getattr(store, name) for name in ("add_metric", "flush_metrics")}

    def guarded(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return call

    for name, original in originals.items():
        setattr(store, name, guarded(original))
    try:
        yield
    finally:
        for name in originals:
            with contextlib.suppress(AttributeError):
                delattr(store, name)  # the class's own methods again


@contextlib.contextmanager
def embedded_stack(
    config: StackConfig,
    models: dict[str, LocalModel],
    *,
    log_path: Path | None = None,
    poll_wait_seconds: int = 1,
    start_trigger: bool = True,
    capture_stdout: bool = False,
    containers: int | None = None,
    lifecycles: dict[str, LocalLifecycle] | None = None,
    controller_seconds: float | None = 1.0,
    on_decision: Callable[[Decision], None] | None = None,
    isolation: str = "thread",
    clock: EmulatedClock | None = None,
) -> Iterator[EmbeddedStack]:
    """Start everything; yield the running stack; stop everything, whatever happens.

    ``models`` maps model ids (endpoint names, model version ARNs) to local models. ``capture_stdout``
    sends this process's stdout to the function's logs while the stack runs (what the function prints, like
    EMF metrics, goes there on Lambda); only for callers that print nothing else. ``containers`` is how many
    execution environments poll the queue at once: by default the trigger's maximum concurrency, as Lambda
    scales to it under load. ``lifecycles`` gives models states (STOPPED, STARTING...; without one a model is
    always running); the model controller runs every ``controller_seconds`` (Lambda's schedule: a minute),
    pausing the trigger while the model cannot answer (None: no controller). ``isolation="process"`` runs every
    invocation the way Lambda does when memory and time matter (``isolation.py``): a fresh process with the
    function's environment, killed above its memory size or past its timeout; ``"warm"`` the same in one process
    per container, reused and frozen between invocations; the default runs the handler in this process's threads
    (fast, but it cannot be killed for memory). ``clock`` (an ``EmulatedClock``) moves
    SQS's time and the controller's forward by days when asked.
    """
    if isolation not in ("thread", "process", "warm"):
        raise ValueError(f"isolation is 'thread', 'process' or 'warm', not {isolation!r}")
    with contextlib.ExitStack() as stack:
        emulator = stack.enter_context(embedded_aws())
        if clock is not None:
            stack.enter_context(clock.installed())
        session = emulator.session()
        s3 = session.client("s3")

        def fetch(bucket: str, key: str, version: str | None) -> bytes:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, **({"VersionId": version} if version else {})}
            data: bytes = s3.get_object(**kwargs)["Body"].read()
            return data

        lambda_api = LambdaApi()
        directory = LocalModels(models, fetch, lifecycles)
        services_url = stack.enter_context(local_services(directory, routes=[lambda_api]))
        _SERVICES_URLS.add(services_url)
        stack.callback(_SERVICES_URLS.discard, services_url)
        resources = provision(session, config)
        environment_at_deploy = lambda_environment(resources, config, services_url)
        function = lambda_api.add_function(
            LocalFunction(
                FUNCTION_NAME,
                dict(environment_at_deploy),
                memory_mb=config.lambda_memory_mb,
                timeout_seconds=config.lambda_timeout_seconds,
            )
        )
        # As in the CDK stack: without a model the trigger starts paused.
        mapping = lambda_api.add_mapping(
            LocalMapping(
                FUNCTION_NAME, resources.queue_arn, config.batch_size, enabled=config.function.model_id is not None
            )
        )
        metrics = Metrics(session.client("cloudwatch"))
        logs = LambdaLogs(session.client("logs"), LOG_GROUP, log_path, on_lines=metrics.from_log)
        stack.callback(logs.close)
        if capture_stdout:
            stack.enter_context(contextlib.redirect_stdout(logs))
        stack.enter_context(patched_environ(environment_at_deploy))

        import lambdas.inference.environment
        import lambdas.inference.handler
        import lambdas.inference.telemetry

        lambdas.inference.environment.reset_runtime()  # read this stack's configuration, as a fresh environment would
        stack.callback(lambdas.inference.environment.reset_runtime)
        # Powertools read its namespace and service when the module was first imported, perhaps under another
        # configuration: a fresh environment would read this function's.
        emitted = lambdas.inference.telemetry.metrics
        previous = (emitted.namespace, emitted.service)
        emitted.namespace = environment_at_deploy.get("POWERTOOLS_METRICS_NAMESPACE", previous[0])
        emitted.service = environment_at_deploy.get("POWERTOOLS_SERVICE_NAME", previous[1])

        def restore_metrics() -> None:
            emitted.namespace, emitted.service = previous

        stack.callback(restore_metrics)
        stack.enter_context(_one_metric_store_at_a_time(emitted))
        log_handler: Any = lambdas.inference.telemetry.logger.registered_handler
        previous_stream = log_handler.setStream(logs)  # the function's log lines go to its log group
        stack.callback(log_handler.setStream, previous_stream)
        runtimes: dict[int, tuple[str, lambdas.inference.environment.Runtime]] = {}

        @contextlib.contextmanager
        def environment(index: int) -> Iterator[None]:
            """Execution environment ``index``: its own runtime, built at its first invoke (its cold start) from
            the function's configuration; a changed configuration means new environments, as on Lambda."""
            revision = function.revision
            if index not in runtimes or runtimes[index][0] != revision:
                from lambdas.contract.settings import Settings

                runtimes[index] = (
                    revision,
                    lambdas.inference.environment.build_runtime(Settings.from_env(function.environment)),
                )
            with lambdas.inference.environment.bound(runtimes[index][1]):
                yield

        def invoke(event: dict[str, Any], context: Any) -> Any:
            try:
                return lambdas.inference.handler.lambda_handler(event, context)
            finally:
                logs.ship()

        invokers: list[ProcessInvoker] = []
        if isolation in ("process", "warm"):
            invoker = ProcessInvoker(
                lambda: {**emulator.environment(), **function.environment, "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME},
                memory_mb=function.memory_mb,
                timeout_seconds=function.timeout_seconds,
                write=logs.write,
                reuse=isolation == "warm",
            )
            invokers.append(invoker)
            stack.callback(invoker.close)

            def invoke_isolated(event: dict[str, Any], context: Any) -> Any:
                try:
                    return invoker(event, context)
                finally:
                    logs.ship()

            handler, bind = invoke_isolated, invoker.container
        else:
            handler, bind = invoke, environment

        reports: list[BatchReport] = []
        trigger = SqsTrigger(
            session.client("sqs"),
            queue_url=resources.queue_url,
            queue_arn=resources.queue_arn,
            region=resources.region,
            handler=_measured(handler, metrics),
            batch_size=config.batch_size,
            batching_window_seconds=config.max_batching_window_seconds,
            function_timeout_seconds=config.lambda_timeout_seconds,
            function_name=FUNCTION_NAME,
            poll_wait_seconds=poll_wait_seconds,
            on_batch=reports.append,
            containers=config.max_concurrency if containers is None else containers,
            bind=bind,
            enabled=lambda: mapping.enabled,
        )
        embedded = EmbeddedStack(
            emulator=emulator,
            resources=resources,
            config=config,
            trigger=trigger,
            services_url=services_url,
            session=session,
            function=function,
            mapping=mapping,
            deployed_environment=environment_at_deploy,
            reports=reports,
            models=directory,
            invocations=invokers[0].reports if invokers else [],
            invoker=invokers[0] if invokers else None,
        )
        if controller_seconds is not None:
            import lambdas.controller.handler

            settings = replace(
                config.controller,
                function_name=FUNCTION_NAME,
                queue_url=resources.queue_url,
                mapping_id=mapping.uuid,
                state_parameter=CONTROLLER_STATE_PARAMETER,
            )

            # One client per service, as the deployed controller keeps them (a new client each tick, every second,
            # was a tenth of a busy embedded stack's CPU).
            @functools.cache
            def control_client(service: str) -> Any:
                return session.client(service, endpoint_url=services_url)  # type: ignore[call-overload]

            clients = lambdas.controller.handler.Clients(
                lambda_=session.client("lambda", endpoint_url=services_url),
                sqs=session.client("sqs"),
                ssm=session.client("ssm"),
                control=control_client,
            )
            stop_controller = threading.Event()

            def control() -> None:
                while not stop_controller.wait(controller_seconds):
                    try:
                        decision = lambdas.controller.handler.tick(
                            settings, clients, now=clock.now() if clock else None
                        )
                    except Exception as exc:  # noqa: BLE001 - a failed run is retried at the next tick, as on AWS
                        logs.write(
                            json.dumps({"level": "ERROR", "service": "model-controller", "error": repr(exc)}) + "\n"
                        )
                        continue
                    embedded.decisions.append(decision)
                    if on_decision:
                        on_decision(decision)

            controller_thread = threading.Thread(target=control, name="model-controller", daemon=True)
            controller_thread.start()

            def halt_controller() -> None:
                stop_controller.set()
                controller_thread.join()

            stack.callback(halt_controller)
        if start_trigger:
            threads, stop = trigger.start()

            def halt() -> None:
                stop.set()
                for thread in threads:
                    thread.join()

            stack.callback(halt)
        yield embedded


def write_state(stack: EmbeddedStack, path: Path) -> None:
    """The state file the other commands find the stack by; its outcome table is copied beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {**stack.state(), "OutcomeTableFolder": str(path.parent / TABLE_FOLDER)}
    path.write_text(json.dumps(state, indent=2), encoding="utf-8")


def _measured(handler: Callable[[dict[str, Any], Any], Any], metrics: Metrics) -> Callable[[dict[str, Any], Any], Any]:
    """The handler, with the Invocations and Duration metrics Lambda publishes for each invoke."""

    def invoke(event: dict[str, Any], context: Any) -> Any:
        started = time.perf_counter()
        try:
            return handler(event, context)
        finally:
            metrics.invocation(context.function_name, (time.perf_counter() - started) * 1000)

    return invoke
