"""The deployment's configuration, from CDK context: one source for the CDK app and the embedded stack.

The function's own settings come from the environment contract (``lambdas/contract/settings.py``, and the
backend modules for their keys): the same definitions read them from context here and from the environment
in the Lambda. The keys below are the stack's own (sizes, batching, retention...). Every key is validated
with the rules the Lambda applies and a failure names the context key. No CDK imports: the embedded stack
(``inferctl.emulator``) builds the same resources from the same values.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdas.contract import backends, rules
from lambdas.contract.rules import SMALLEST_MEMORY_MB, ConfigError
from lambdas.contract.settings import Settings, all_variables, model_variables, platform_environment
from lambdas.contract.variables import CONNECT_TIMEOUT_SECONDS, read_all
from lambdas.controller.settings import CONTROLLER_VARIABLES, ControllerSettings

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922)
DLQ_RETENTION_DAYS = 14  # SQS maximum: the longest time operators get to inspect and redrive
# SQS maximum too: while the model is stopped (or not yet configured) the trigger is paused and images wait
# in the queue; they survive a stop of up to two weeks.
QUEUE_RETENTION_DAYS = 14
# Images waiting longer than this raise the OldestMessageAge alarm (auto mode: a start takes up to 30 min).
DEFAULT_MAX_WAIT_MINUTES = 15
DEFAULT_MAX_WAIT_MINUTES_AUTO = 45
# AWS: visibility timeout >= 6 x function timeout (+ batching window), so a batch that is retried inside one
# receive does not become visible to another poller while the first is still working.
VISIBILITY_TIMEOUT_FACTOR = 6
DEFAULT_MAX_CONCURRENCY = 10  # concurrent batches when the model's capacity is not known
# The context keys the stack reads itself; the function's and the controller's are their variables' context names.
STACK_KEYS = (
    "stackName",
    "maxReceiveCount",
    "lambdaMemoryMb",
    "lambdaTimeoutSeconds",
    "batchSize",
    "maxBatchingWindowSeconds",
    "maxConcurrency",
    "retryMaxAttempts",
    "logRetentionDays",
    "tracing",
    "alarmTopicArn",
    "alarmEmail",
    "allowDestroy",
    "tags",
    "permissionsBoundaryArn",
    "maxWaitMinutes",
    "resultWriterArns",
    "inferenceUnits",
    "nearThresholdAlarmShare",
    "outcomeTable",
    "outcomeRetentionDays",
    "athenaScanLimitMb",
    "athenaResultsDays",
)
# Ours are camelCase words; CDK's own keys have a colon, a slash or a dash (``@aws-cdk/...``, ``aws:cdk:...``,
# ``cli-telemetry``, lookups such as ``availability-zones:account=...``) and are left to CDK.
_OUR_SHAPE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
MAX_VISIBILITY_SECONDS = 43_200  # SQS: 12 hours
RETRY_DELAY_CAP_SECONDS = 900


@dataclass(frozen=True)
class StackConfig:
    function: Settings
    stack_name: str = "ImageInference"
    max_receive_count: int = 5
    lambda_memory_mb: int = 1024
    lambda_timeout_seconds: int = 60
    batch_size: int = 10
    max_batching_window_seconds: int = 0
    explicit_max_concurrency: int | None = None
    retry_max_attempts: int = 3
    log_retention_days: int = 30
    tracing: bool = True
    alarm_topic_arn: str | None = None
    alarm_email: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    permissions_boundary_arn: str | None = None
    allow_destroy: bool = False
    controller: ControllerSettings = field(default_factory=lambda: controller_from_context(lambda key: None))
    explicit_max_wait_minutes: int | None = None
    # Break glass: principals besides the function that may write result documents (the bucket policy denies
    # everyone else, so that nobody can forge or block an image's result).
    result_writer_arns: tuple[str, ...] = ()
    # An alarm when more than this share of a day's images has a candidate just below its threshold (a review
    # round is due: inferctl review); None: no such alarm.
    near_threshold_alarm_share: float | None = None
    # The outcome table (a row per outcome document, queried with Athena): whether the stack makes it, how long
    # its rows are kept, the bytes one query may scan, and how long query results are kept.
    outcome_table: bool = True
    outcome_retention_days: int = 400
    athena_scan_limit_mb: int = 10_240
    athena_results_days: int = 7

    @property
    def auto_mode(self) -> bool:
        return self.controller.auto

    @property
    def max_wait_minutes(self) -> int:
        """The OldestMessageAge alarm's threshold: longer in auto mode, where the first image after an idle
        stop waits for the model to start."""
        if self.explicit_max_wait_minutes is not None:
            return self.explicit_max_wait_minutes
        return DEFAULT_MAX_WAIT_MINUTES_AUTO if self.auto_mode else DEFAULT_MAX_WAIT_MINUTES

    # The function's settings most of the stack needs, by their names.
    @property
    def input_prefix(self) -> str:
        return self.function.input_prefix

    @property
    def image_suffixes(self) -> tuple[str, ...]:
        return self.function.image_suffixes

    @property
    def backend(self) -> str:
        return self.function.backend

    @property
    def record_concurrency(self) -> int:
        return self.function.record_concurrency

    @property
    def visibility_timeout_seconds(self) -> int:
        return VISIBILITY_TIMEOUT_FACTOR * self.lambda_timeout_seconds + self.max_batching_window_seconds

    @property
    def model_capacity(self) -> float | None:
        """Model calls per second the configured model takes (None: not known). With a challenger that sees
        every image, the smaller of the two: each image costs both a call."""
        capacity = self.function.spec.capacity(self.function.model)
        challenger = self.function.challenger
        if challenger.enabled and challenger.sample_percent >= 100:
            other = challenger.spec.capacity(challenger.model)
            if other is not None:
                capacity = other if capacity is None else min(capacity, other)
        return capacity

    @property
    def max_concurrency(self) -> int:
        """Concurrent batches the SQS trigger may run (2-1000). Derived so that the stack does not throttle
        its own model: the model's calls per second divided by the calls one batch makes at once."""
        if self.explicit_max_concurrency is not None:
            return self.explicit_max_concurrency
        capacity = self.model_capacity
        if capacity is None:
            return DEFAULT_MAX_CONCURRENCY
        in_flight_per_batch = min(self.batch_size, self.record_concurrency)
        return max(2, min(1000, math.floor(capacity / in_flight_per_batch)))

    @property
    def backend_read_timeout_seconds(self) -> int:
        """Per-attempt read timeout for model calls, so that every attempt (plus a 2 s connect each) fits in
        three quarters of the function's timeout; the rest is for reading the image and writing the result.
        A SageMaker container may take up to 60 s: raise lambdaTimeoutSeconds for models that slow."""
        budget = self.lambda_timeout_seconds * 3 // 4
        return max(1, budget // self.retry_max_attempts - CONNECT_TIMEOUT_SECONDS)

    @property
    def backend_call_timeout_seconds(self) -> int:
        """A whole model call (connect, every read, every retry) ends within three quarters of the function's
        timeout: a model that trickles its answer cannot take the invocation, and the batch, with it."""
        return max(1, self.lambda_timeout_seconds * 3 // 4)

    @property
    def storage_read_timeout_seconds(self) -> int:
        """Per-attempt read timeout for S3 calls: every attempt (plus a 2 s connect each) fits in the quarter
        of the function's timeout that model calls leave."""
        budget = self.lambda_timeout_seconds // 4
        return max(1, budget // self.retry_max_attempts - CONNECT_TIMEOUT_SECONDS)

    @property
    def model_calls_per_second(self) -> float | None:
        """What one execution environment may send the model: its share of the model's capacity. Lambda runs
        up to ``max_concurrency`` environments; each keeps to capacity / max_concurrency, so together they
        stay within what the model takes instead of throttling it."""
        capacity = self.model_capacity
        return None if capacity is None else round(capacity / self.max_concurrency, 3)

    @property
    def function_settings(self) -> Settings:
        """The function's settings with the values the stack derives (and the memory Lambda will report)."""
        return self.function._replace(
            backend_read_timeout_seconds=self.backend_read_timeout_seconds,
            backend_call_timeout_seconds=self.backend_call_timeout_seconds,
            storage_read_timeout_seconds=self.storage_read_timeout_seconds,
            model_calls_per_second=self.model_calls_per_second,
            # A back-off never makes a record wait longer than the queue alone would have.
            retry_delay_max_seconds=min(
                self.function.retry_delay_max_seconds, RETRY_DELAY_CAP_SECONDS, self.visibility_timeout_seconds
            ),
            memory_mb=self.lambda_memory_mb,
        )

    def lambda_environment(self) -> dict[str, str]:
        """The function's environment, except what only exists at deploy time (the key ARN)."""
        return {
            **self.function_settings.to_env(),
            **platform_environment(tracing=self.tracing, max_attempts=self.retry_max_attempts),
        }

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> StackConfig:
        """Build from CDK context (``app.node.try_get_context``); ConfigError names the bad context key.

        Values given with ``-c key=value`` arrive as strings, values from cdk.json as JSON types; both work.
        """
        defaults = cls(function=Settings.from_context(lambda key: None))

        def value(key: str, parse: Callable[[str, Any], Any], default: Any) -> Any:
            raw = get(key)
            if raw is None or raw == "":
                return default
            return parse(key, raw)

        def number(low: int, high: int) -> Callable[[str, Any], int]:
            return lambda key, raw: rules.integer(key, raw, low, high)

        timeout = value("lambdaTimeoutSeconds", number(1, 900), defaults.lambda_timeout_seconds)
        window = value("maxBatchingWindowSeconds", number(0, 300), defaults.max_batching_window_seconds)
        batch_size = value("batchSize", number(1, 10_000), defaults.batch_size)
        if batch_size > 10 and window == 0:
            raise ConfigError(
                "batchSize", "above 10 needs maxBatchingWindowSeconds of at least 1 (an SQS trigger rule)"
            )
        retention = value("logRetentionDays", number(1, 3653), defaults.log_retention_days)
        if retention not in LOG_RETENTION_DAYS:
            raise ConfigError("logRetentionDays", f"CloudWatch Logs accepts {LOG_RETENTION_DAYS}, got {retention}")
        config = cls(
            function=Settings.from_context(get),
            stack_name=value("stackName", rules.stack_name, defaults.stack_name),
            max_receive_count=value("maxReceiveCount", number(1, 1000), defaults.max_receive_count),
            lambda_memory_mb=value("lambdaMemoryMb", number(SMALLEST_MEMORY_MB, 10_240), defaults.lambda_memory_mb),
            lambda_timeout_seconds=timeout,
            batch_size=batch_size,
            max_batching_window_seconds=window,
            explicit_max_concurrency=value("maxConcurrency", number(2, 1000), None),
            retry_max_attempts=value("retryMaxAttempts", number(1, 10), defaults.retry_max_attempts),
            log_retention_days=retention,
            tracing=value("tracing", rules.flag, defaults.tracing),
            alarm_topic_arn=value("alarmTopicArn", rules.sns_topic_arn, None),
            alarm_email=value("alarmEmail", email_address, None),
            allow_destroy=value("allowDestroy", rules.flag, defaults.allow_destroy),
            tags=value("tags", resource_tags, {}),
            permissions_boundary_arn=value("permissionsBoundaryArn", managed_policy_arn, None),
            controller=controller_from_context(get),
            explicit_max_wait_minutes=value("maxWaitMinutes", number(1, 20_160), None),
            result_writer_arns=value("resultWriterArns", principal_arns, ()),
            near_threshold_alarm_share=value(
                "nearThresholdAlarmShare", lambda key, raw: rules.number(key, raw, 0.01, 1.0), None
            ),
            outcome_table=value("outcomeTable", rules.flag, defaults.outcome_table),
            outcome_retention_days=value("outcomeRetentionDays", number(1, 3653), defaults.outcome_retention_days),
            # Athena's own floor for a workgroup's per-query limit is 10 MB
            athena_scan_limit_mb=value("athenaScanLimitMb", number(10, 10_000_000), defaults.athena_scan_limit_mb),
            athena_results_days=value("athenaResultsDays", number(1, 365), defaults.athena_results_days),
        )
        if config.auto_mode and not config.function.spec.lifecycle.can_start_stop:
            raise ConfigError(
                "autoMode",
                f"the {config.function.spec.title} ({config.backend}) cannot be started or stopped (it is created "
                "and deleted), so auto mode has nothing to do; the controller pauses the trigger while the model "
                "cannot answer either way. Remove -c autoMode=true (a serverless endpoint scales to zero by itself)",
            )
        if config.alarm_email and config.alarm_topic_arn:
            raise ConfigError(
                "alarmEmail", "subscribes to the topic the stack makes; with alarmTopicArn, subscribe to that topic"
            )
        if config.visibility_timeout_seconds > MAX_VISIBILITY_SECONDS:
            raise ConfigError(
                "lambdaTimeoutSeconds", "6 x timeout + batching window exceeds SQS's 12-hour visibility limit"
            )
        return config

    def arns_by_context_key(self) -> dict[str, str]:
        """Every ARN the configuration names, by the context key that set it."""
        found = {"alarmTopicArn": self.alarm_topic_arn, "permissionsBoundaryArn": self.permissions_boundary_arn}
        for variable in Settings.variables(self.backend):
            value = getattr(self.function, variable.field, getattr(self.function.model, variable.field, None))
            if variable.context and isinstance(value, str) and value.startswith("arn:"):
                found[variable.context] = value
        challenger = self.function.challenger
        if challenger.enabled:
            for variable in model_variables(str(challenger.backend)):
                value = getattr(challenger.model, variable.field, None)
                if variable.context and isinstance(value, str) and value.startswith("arn:"):
                    found[variable.context] = value
        return {key: arn for key, arn in found.items() if arn}

    def refuse_foreign_arns(self, account: str | None, region: str | None) -> None:
        """A model or topic in another region or account than the stack's known environment cannot work (the
        function calls its own region; alarms notify topics in theirs): refuse it at synth, naming the key.
        An environment-agnostic stack (no CDK_DEFAULT_ACCOUNT/REGION) is not checked."""
        for key, arn in self.arns_by_context_key().items():
            parts = arn.split(":")
            arn_region, arn_account = (parts[3], parts[4]) if len(parts) > 4 else ("", "")
            if region and arn_region and arn_region != region:
                raise ConfigError(key, f"{arn} is in {arn_region}, but the stack deploys to {region}")
            if account and arn_account and arn_account != account:
                raise ConfigError(key, f"{arn} belongs to account {arn_account}, but the stack deploys to {account}")

    @classmethod
    def from_cdk_json(cls, overrides: Mapping[str, Any] | None = None, path: Path = CDK_JSON) -> StackConfig:
        """The configuration ``cdk synth`` would use, read from cdk.json's context (plus overrides)."""
        context = cdk_json_context(path)
        context.update(overrides or {})
        refuse_unknown_keys(context)
        return cls.from_context(context.get)


def controller_from_context(get: Callable[[str], Any]) -> ControllerSettings:
    """The model controller's settings from context (auto mode, idle time); the stack adds the resource
    names, and an automatic start asks for the configured inference units."""
    values = read_all(
        CONTROLLER_VARIABLES, lambda variable: get(variable.context) if variable.context else None, "context"
    )
    units = get("inferenceUnits")
    if units not in (None, ""):
        values["start_units"] = rules.integer("inferenceUnits", units, 1, 1000)
    return ControllerSettings(**values)


def known_context_keys() -> frozenset[str]:
    """Every context key this project reads, for every backend (a key prepared for a later switch is known)."""
    variables = [*CONTROLLER_VARIABLES, *all_variables()]
    for name in backends.REGISTERED:
        variables.extend(Settings.variables(name))
    return frozenset(STACK_KEYS) | {variable.context for variable in variables if variable.context}


def refuse_unknown_keys(keys: Iterable[str]) -> None:
    """A key shaped like ours that no code reads is a typo (``minConfidenc``) that would otherwise be ignored
    while the deploy goes ahead: refuse it, naming the nearest known key."""
    known = known_context_keys()
    for key in sorted(keys):
        if key in known or not _OUR_SHAPE.match(key):
            continue
        nearest = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6) or [
            name for name in sorted(known) if name.lower() == key.lower()
        ]
        fix = f"did you mean {nearest[0]}?" if nearest else "docs/configuration.md lists the keys"
        raise ConfigError(key, f"not a context key this stack reads: {fix}")


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """cdk.json's ``context``: defaults for ``python app.py`` and tests, where the CDK CLI does not pass it.
    Under the CLI, its context (cdk.json plus ``-c``) takes precedence over these."""
    context = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    return dict(context)


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def email_address(name: str, raw: Any) -> str:
    return rules.matching(name, raw, _EMAIL, "expected an email address like ops@example.com")


_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]{1,512}$")
_SESSION_ARN = re.compile(r"^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([\w+=,.@-]{1,64})/.+$")


def principal_arns(name: str, raw: Any) -> tuple[str, ...]:
    """IAM role or user ARNs: a JSON list, or one ARN, or ARNs separated by commas."""
    if isinstance(raw, str):
        stripped = raw.strip()
        if stripped.startswith("["):
            try:
                raw = json.loads(stripped)
            except json.JSONDecodeError:
                raise ConfigError(name, f"expected a JSON list of IAM role ARNs, got {raw!r}") from None
        else:
            raw = [part for part in stripped.split(",") if part.strip()]
    if not isinstance(raw, list):
        raise ConfigError(name, f"expected a list of IAM role ARNs, got {raw!r}")
    expected = "expected IAM role ARNs like arn:aws:iam::ACCOUNT:role/NAME"
    for item in raw:
        session = _SESSION_ARN.match(item) if isinstance(item, str) else None
        if session:
            partition, account, role = session.groups()
            raise ConfigError(
                name,
                f"{item} is a session of a role, and aws:PrincipalArn is the role's own ARN for every session: "
                f"use arn:{partition}:iam::{account}:role/{role}",
            )
    return tuple(rules.matching(name, item, _PRINCIPAL_ARN, expected) for item in raw)


_POLICY_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:policy/[\w+=,.@/-]{1,512}$")


def managed_policy_arn(name: str, raw: Any) -> str:
    return rules.matching(name, raw, _POLICY_ARN, "expected an IAM policy ARN like arn:aws:iam::ACCOUNT:policy/NAME")


def resource_tags(name: str, raw: Any) -> dict[str, str]:
    """Tags for every resource (cost allocation): a JSON object of strings, as AWS limits them."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise ConfigError(name, f'expected a JSON object like {{"CostCenter": "1234"}}, got {raw!r}') from None
    if not isinstance(raw, dict):
        raise ConfigError(name, f"expected a JSON object of tag names to values, got {raw!r}")
    tags: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
            raise ConfigError(name, f"tag key {key!r}: 1-128 characters, not starting with 'aws:'")
        if not isinstance(value, str | int | float) or isinstance(value, bool) or len(str(value)) > 256:
            raise ConfigError(name, f"tag {key!r}: the value must be a string of at most 256 characters")
        tags[key] = str(value)
    return tags
