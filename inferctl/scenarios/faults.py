"""A fault-injected end-to-end run on the embedded stack: nothing lost, nothing with two outcomes.

Faults: the model throttles a share of its calls and has bursts of "not ready"; some result writes fail
(at the SDK layer, before the request leaves botocore); a share of the files are corrupt. Afterwards every
object is checked: exactly one of result, error document, dead letter.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from inferctl.emulator.models import stand_in
from inferctl.emulator.models.base import ModelFault, Prediction
from inferctl.emulator.stack import embedded_stack
from inferctl.samples import scene
from inferctl.scenarios.demo.run import demo_config, demo_models
from inferctl.stack import uploads
from inferctl.stack.deadletters import dead_letters
from inferctl.stack.outcomes import ImageState
from inferctl.stack.target import from_outputs


@dataclass(frozen=True)
class FaultPlan:
    images: int = 300
    throttle_rate: float = 0.25  # share of model calls answered with ThrottlingException
    not_ready_bursts: tuple[tuple[float, float], ...] = ((0.15, 0.08), (0.55, 0.06))  # (start, length), share of images
    corrupt_rate: float = 0.05
    write_fail_rate: float = 0.05  # share of images whose first result write fails
    seed: int = 7
    backend: str = "sagemaker"  # or any registered backend: the same faults in that service's own error codes
    # A 10 s function (a 60 s visibility timeout), so that retries come round quickly. Its S3 reads may wait 1 s
    # each: on a slow machine the emulator, taking the uploads and the function's calls at once, answered a result's
    # write later than that, and the write that had succeeded was retried. A run without faults (the bench's row 5)
    # takes the stack's default instead (5 s reads), so that only the faults planned are the faults seen.
    function_timeout_seconds: int = 10


@dataclass
class UnreliableModel:
    """The demo model behind throttling and not-ready bursts (counted in model calls). The faults are raised
    as ``ModelFault``: each backend's emulation answers them in its service's own error codes."""

    plan: FaultPlan
    calls: int = 0
    throttled: int = 0
    not_ready: int = 0
    served: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.plan.seed)  # noqa: S311 - reproducible faults, not secrets
        self._bursts = [
            (int(start * self.plan.images), int(start * self.plan.images) + max(1, int(length * self.plan.images)))
            for start, length in self.plan.not_ready_bursts
        ]

    def _gate(self) -> None:
        with self._lock:
            index = self.calls
            self.calls += 1
            if any(start <= index < end for start, end in self._bursts):
                self.not_ready += 1
                raise ModelFault("not_ready", "Model is not running; try again later")
            if self._rng.random() < self.plan.throttle_rate:
                self.throttled += 1
                raise ModelFault("throttled", "Rate exceeded")
            self.served += 1

    def __call__(self, body: bytes, content_type: str) -> list[Prediction]:
        self._gate()
        return stand_in.detect(body, content_type)


class WriteFaults:
    """Fails the first PutObject of chosen result keys, for clients of boto3's default session (the
    handler's). Registered on ``before-call``, so the request never leaves botocore."""

    def __init__(self, failing_keys: set[str]) -> None:
        self.failing = set(failing_keys)
        self.injected = 0
        self._lock = threading.Lock()

    @staticmethod
    def remember_key(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["fault_injection_key"] = params.get("Key")  # before-call sees only the serialized request

    def __call__(self, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        key = context.get("fault_injection_key")
        with self._lock:
            if key not in self.failing:
                return None
            self.failing.discard(key)
            self.injected += 1
        response = AWSResponse("https://s3.local", 500, {}, io.BytesIO(b""))  # type: ignore[arg-type]
        parsed: dict[str, Any] = {
            "Error": {"Code": "InternalError", "Message": "injected fault"},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        }
        return response, parsed

    def install(self) -> None:
        boto3.setup_default_session()
        events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
        events.register("before-parameter-build.s3.PutObject", self.remember_key)
        events.register("before-call.s3.PutObject", self)  # type: ignore[arg-type]

    def uninstall(self) -> None:
        if boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.unregister("before-parameter-build.s3.PutObject", self.remember_key)
            boto3.DEFAULT_SESSION.events.unregister("before-call.s3.PutObject", self)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Item:
    key: str  # relative to the input prefix
    data: bytes
    corrupt: bool


def corpus(plan: FaultPlan) -> list[Item]:
    rng = random.Random(plan.seed)  # noqa: S311 - reproducible corpus
    kinds = ["sun", "tree", "car", "ball", "house", "flower", "lake"]
    items = []
    for index in range(plan.images):
        image = scene(index, rng.sample(kinds, 3)).resize((320, 240))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
        data = buffer.getvalue()
        corrupt = rng.random() < plan.corrupt_rate
        if corrupt:
            data = data[: len(data) // 3] if index % 2 else b"corrupt: not image data\n" * 4
        items.append(Item(key=f"fault-run/{index:04d} scene ü.jpg", data=data, corrupt=corrupt))
    return items


@dataclass
class FaultReport:
    outcomes: Counter[str]
    error_codes: Counter[str]  # per attempt, from the function's log
    model: dict[str, int]
    writes_failed: int
    problems: list[str]
    seconds: float
    batches: int

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcomes": dict(self.outcomes),
            "error_codes_per_attempt": dict(self.error_codes),
            "model_calls": self.model,
            "result_writes_failed": self.writes_failed,
            "problems": self.problems,
            "seconds": round(self.seconds, 1),
            "batches": self.batches,
        }


def check(items: list[Item], found: dict[str, ImageState], prefix: str, dead_keys: Counter[str]) -> list[str]:
    """Object by object: exactly one outcome, and corrupt files end as error documents."""
    problems = []
    for item in items:
        key = prefix + item.key
        outcome = found[key]
        has_document = outcome.document is not None
        letters = dead_keys.get(key, 0)
        if has_document + (letters > 0) != 1 or letters > 1:
            problems.append(f"{key}: document={has_document} dead_letters={letters}")
        elif item.corrupt and outcome.state == "ok":
            problems.append(f"{key}: corrupt file has a result")
        elif not item.corrupt and outcome.state == "error":
            problems.append(f"{key}: good image has an error document ({(outcome.document or {}).get('error')})")
    return problems


def error_codes(log_path: Path) -> Counter[str]:
    codes: Counter[str] = Counter()
    for line in log_path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if (
            isinstance(record, dict)
            and record.get("error_code")
            and record.get("message") != "Record failed; SQS will redeliver it"
        ):
            codes[record["error_code"]] += 1
    return codes


def run(plan: FaultPlan, out: Path, timeout: float = 600.0, progress: bool = True) -> FaultReport:
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "lambda.log"
    log_path.unlink(missing_ok=True)
    items = corpus(plan)
    model = UnreliableModel(plan)
    # The plan's function timeout (10 s by default: a 60 s visibility timeout) and 1 s back-offs, so retries come round
    # quickly; 2 botocore attempts per call.
    config = demo_config(
        {
            "lambdaTimeoutSeconds": plan.function_timeout_seconds,
            "retryMaxAttempts": 2,
            "retryDelayMaxSeconds": 1,
            "backend": plan.backend,
        }
    )
    failing = {
        config.input_prefix + item.key + ".json"
        for item in items
        if int(hashlib.sha256(item.key.encode()).hexdigest(), 16) % 1000 < plan.write_fail_rate * 1000
    }
    writes = WriteFaults(failing)
    writes.install()
    started = time.monotonic()
    try:
        # The function's output (its EMF lines) goes to its log, as on Lambda, whether or not progress is shown
        with embedded_stack(config, demo_models(model), log_path=log_path, capture_stdout=True) as stack:
            target = from_outputs(stack.session, stack.state(), None, "embedded")
            uploads.upload_many(target, [(item.key, item.data) for item in items], progress=progress)
            keys = [config.input_prefix + item.key for item in items]
            found = uploads.wait_for(target, keys, timeout=timeout, progress=progress)
            letters = dead_letters(stack.client("sqs"), stack.resources.dead_letter_queue_url)
            batches = stack.trigger.stats.batches
    finally:
        writes.uninstall()
    dead_keys: Counter[str] = Counter(key for letter in letters for key in letter.keys)
    return FaultReport(
        outcomes=Counter(outcome.state for outcome in found.values()),
        error_codes=error_codes(log_path),
        model={
            "calls": model.calls,
            "throttled": model.throttled,
            "not_ready": model.not_ready,
            "served": model.served,
        },
        writes_failed=writes.injected,
        problems=check(items, found, config.input_prefix, dead_keys),
        seconds=time.monotonic() - started,
        batches=batches,
    )


def _writes_line(report: FaultReport) -> str:
    """Injected write failures beside those the function logged: the log also counts writes that failed on
    their own (the emulator slow under load), and the two numbers must not seem to contradict each other."""
    logged = report.error_codes.get("RESULT_WRITE_FAILED", 0)
    line = f"result writes failed: {report.writes_failed} injected"
    if logged != report.writes_failed:
        own = logged - report.writes_failed
        line += f"; the function logged {logged} (RESULT_WRITE_FAILED below)"
        if own > 0:
            line += f": {own} failed on their own (the emulator slow or refusing), and were retried like the rest"
    return line


def print_report(report: FaultReport, stream: Any = None) -> None:
    stream = stream or sys.stdout
    calls = max(1, report.model["calls"])
    lines = [
        f"images: {sum(report.outcomes.values())} in {report.seconds:.0f} s, {report.batches} batches",
        "outcomes: " + ", ".join(f"{k}={v}" for k, v in sorted(report.outcomes.items())),
        f"model calls: {report.model['calls']} (throttled {report.model['throttled']} = "
        f"{100 * report.model['throttled'] / calls:.0f}%, not ready {report.model['not_ready']})",
        _writes_line(report),
        "error codes per attempt: " + ", ".join(f"{k}={v}" for k, v in sorted(report.error_codes.items())),
        "lost or double outcomes: " + ("none" if report.ok else f"{len(report.problems)}"),
    ]
    lines += [f"  {problem}" for problem in report.problems[:20]]
    stream.write("\n".join(lines) + "\n")
