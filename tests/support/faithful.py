"""The Lambda-faithful harness: the embedded stack's queue with its redrive, every invocation run the way Lambda
runs it (``inferctl/emulator/isolation.py``: a process per execution environment, the function's environment
set before the interpreter starts, killed above its memory size or past its timeout), the demo model behind it
with a behaviour chosen per image, and the checks the core promise asks of each image's neighbours."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferctl.emulator.clock import EmulatedClock
from inferctl.emulator.models import stand_in
from inferctl.emulator.stack import EmbeddedStack, embedded_stack
from inferctl.scenarios.demo.run import demo_config
from inferctl.stack import uploads
from inferctl.stack.deadletters import dead_letters, inspect_dlq
from inferctl.stack.outcomes import ImageState
from inferctl.stack.target import Target, from_outputs
from tests.support.logs import settled_results, size

MEMORY_MB = 1024
MUTATIONS_PER_BASE = 160  # as the fuzz test
LOGS = Path(__file__).resolve().parents[2] / "out" / "test-logs" / "lambda-faithful"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Model:
    """The demo model, with a behaviour chosen per image (recognised by the bytes the function sends)."""

    special: dict[str, Callable[[bytes, str], Any]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, body: bytes, content_type: str) -> Any:
        key = digest(body)
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1
        behaviour = self.special.get(key)
        return behaviour(body, content_type) if behaviour else stand_in.detect(body, content_type)

    def count(self, data: bytes) -> int:
        return self.calls.get(digest(data), 0)


@dataclass
class Harness:
    stack: EmbeddedStack
    model: Model
    target: Target
    log: Path
    reports: list[Any] = field(default_factory=list)  # the REPORT of each invocation of the last run
    since: int = 0  # where the function's log stood when the last run began

    @contextlib.contextmanager
    def trigger(self) -> Iterator[None]:
        threads, stop = self.stack.trigger.start()
        try:
            yield
        finally:
            stop.set()
            for thread in threads:
                thread.join()

    def run(self, items: dict[str, bytes], timeout: float = 240) -> dict[str, ImageState]:
        """Upload everything first (one batch when it fits), then let the trigger work until all have settled."""
        before = len(self.stack.invocations)
        self.since = size(self.log)
        keys = [u.key for u in uploads.upload_many(self.target, list(items.items()), progress=False)]
        with self.trigger():
            states = uploads.wait_for(self.target, keys, timeout, progress=False, poll_seconds=0.25)
        self.reports = self.stack.invocations[before:]
        return {key.removeprefix(self.target.input_prefix): state for key, state in states.items()}

    def why_dead_lettered(self) -> dict[str, str | None]:
        """Each dead-lettered image and the last error the function logged for it (what `inferctl dlq` shows)."""
        return {
            key.removeprefix(self.target.input_prefix): report.last_error
            for report in inspect_dlq(self.target)
            for key in report.letter.keys
        }

    def dead_lettered(self) -> set[str]:
        sqs = self.target.client("sqs")
        return {key for letter in dead_letters(sqs, self.target.dead_letter_queue_url) for key in letter.keys}

    def failures(self, key: str) -> list[str]:
        """The error code of each failed attempt the function logged for ``key`` (its record-level lines: failed,
        still running at the end, not started for want of time; each names the record's object keys)."""
        codes = []
        for line in self.log.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and self.target.input_prefix + key in (entry.get("object_keys") or []):
                    codes.append(str(entry.get("error_code")))
        return codes

    def kills(self) -> list[str]:
        return [report.line() for report in self.reports if report.status not in ("ok", "error")]


def harness(
    overrides: dict[str, Any], containers: int = 1, isolation: str = "process", clock: EmulatedClock | None = None
) -> Iterator[Harness]:
    """A stack with ``overrides`` (context keys) whose function runs in a fresh process per invocation
    (``isolation="process"``) or in warm environments frozen between invocations (``"warm"``); SQS on ``clock``
    when one is given (a visibility timeout passes when the test advances it)."""
    model = Model()
    config = demo_config({"lambdaMemoryMb": MEMORY_MB, "batchSize": 10, **overrides})
    name = "-".join(f"{key}={value}" for key, value in sorted(overrides.items()))
    # Per test worker: two modules on two workers may ask for the same overrides at once, and each harness starts
    # its log afresh (a shared name deleted the other's log under it).
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    log = LOGS / f"lambda-{containers}-{isolation}-{name}-{worker}.log"
    log.unlink(missing_ok=True)
    with embedded_stack(
        config,
        {"stand-in-shapes": model},
        start_trigger=False,
        containers=containers,
        isolation=isolation,
        log_path=log,
        clock=clock,
    ) as stack:
        # As an operator may: a failed record comes back after a second, not after 30 s and more.
        stack.function.environment["RETRY_DELAY_MAX_SECONDS"] = "1"
        yield Harness(stack, model, from_outputs(stack.session, stack.state(), None, "embedded"), log)


def assert_neighbours_once(
    h: Harness, states: dict[str, ImageState], neighbours: dict[str, bytes], troubled: str | None = None
) -> None:
    """Each neighbour: one result in this run, no dead letter, never failed with the troubled image's error
    code, and sent to the model (more than once only when botocore retried a call, or the function returned the
    record: as on a machine busy enough to make a short function late; ``tests/support/logs.py``)."""
    letters = h.dead_lettered()
    written = settled_results(h.log, h.since, [h.target.input_prefix + name for name in neighbours])
    for name, data in neighbours.items():
        key = h.target.input_prefix + name
        assert states[name].state == "ok", (name, states[name])
        assert key not in letters, f"{name} has a result and a dead letter"
        assert troubled is None or troubled not in h.failures(name), f"{name} failed with {troubled}"
        assert written[key] == 1, f"{name}: {written[key]} results written"
        assert h.model.count(data) >= 1


def with_tail(data: bytes, tail: int) -> bytes:
    """The same JPEG with a different byte after its end marker (decoders ignore it): another object."""
    return data + tail.to_bytes(2, "big")


class Gate:
    """Holds the model's answer for one image until released (the race's slow invocation)."""

    def __init__(self, model: Model, data: bytes, hold_call: int) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.model, self.data, self.hold_call = model, data, hold_call
        model.special[digest(data)] = self

    def __call__(self, body: bytes, kind: str) -> Any:
        if self.model.count(self.data) == self.hold_call:
            self.entered.set()
            assert self.release.wait(60), "the gate was never released"
        return stand_in.detect(body, kind)


def wait_for_version(h: Harness, key: str, version: str | None, timeout: float = 60) -> None:
    states = uploads.wait_for(h.target, [key], timeout, progress=False, poll_seconds=0.2, versions={key: version})
    assert states[key].state == "ok", states[key]


def wait_until_queue_is_empty(h: Harness, timeout: float = 60) -> None:
    sqs = h.target.client("sqs")
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

    def empty() -> bool:
        attributes = sqs.get_queue_attributes(QueueUrl=h.target.queue_url, AttributeNames=names)["Attributes"]
        return all(attributes[name] == "0" for name in names)

    assert poll(empty, timeout), "the queue did not drain"


def poll(condition: Callable[[], bool], timeout: float, every: float = 0.2) -> bool:
    """Wait on a condition, not for a time: True as soon as it holds, False after ``timeout``."""
    stop = threading.Event()
    deadline = timeout / every
    for _ in range(int(deadline) + 1):
        if condition():
            return True
        stop.wait(every)
    return condition()
