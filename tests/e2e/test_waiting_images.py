"""Images waiting on a model that is stopped by hand, for longer than the queue keeps a message: the controller
keeps them alive, audit calls them waiting (never missing), reprocess --missing leaves them alone, and once
the model runs they all get results. SQS's and the controller's clocks are emulated (days pass in seconds);
the queue's retention is its real 14 days, enforced by moto."""

from __future__ import annotations

import threading
from collections.abc import Callable

from inferctl.emulator.clock import EmulatedClock
from inferctl.emulator.models.base import LocalLifecycle
from inferctl.emulator.models.rekognition import STAND_IN_ARN
from inferctl.emulator.stack import embedded_stack
from inferctl.scenarios.burst import small_jpeg
from inferctl.scenarios.demo.run import demo_config, demo_models
from inferctl.stack import audit, reprocess, uploads
from inferctl.stack.deadletters import dead_letters
from inferctl.stack.target import from_outputs
from lambdas.controller.decide import Decision

DAY = 24 * 3600
IMAGES = 20


class Decisions:
    """The controller's decisions as they come, to wait on the next one (a condition, not a sleep)."""

    def __init__(self) -> None:
        self.seen: list[Decision] = []
        self._changed = threading.Condition()

    def __call__(self, decision: Decision) -> None:
        with self._changed:
            self.seen.append(decision)
            self._changed.notify_all()

    def wait(self, condition: Callable[[list[Decision]], bool], timeout: float = 30) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: condition(self.seen), timeout), self.seen[-3:]

    def next(self) -> Decision:
        count = len(self.seen)
        self.wait(lambda seen: len(seen) > count)
        return self.seen[-1]


def test_images_waiting_30_days_on_a_stopped_model_are_all_processed_when_it_starts():
    clock, decisions = EmulatedClock(), Decisions()
    lifecycle = LocalLifecycle("STOPPED", start_seconds=0.5, stop_seconds=0.5)  # stopped by hand, no auto mode
    config = demo_config({"backend": "rekognition", "retryDelayMaxSeconds": 2})
    with embedded_stack(
        config,
        demo_models(),
        lifecycles={STAND_IN_ARN: lifecycle},
        controller_seconds=0.2,
        on_decision=decisions,
        clock=clock,
    ) as stack:
        target = from_outputs(stack.session, stack.state(), None, "embedded")
        decisions.wait(lambda seen: bool(seen) and not seen[-1].trigger_enabled)
        sent = uploads.upload_many(target, [(f"patient/{n:02d}.jpg", small_jpeg(n)) for n in range(IMAGES)], False)
        keys = [upload.key for upload in sent]
        # (a long poll under way when the trigger was paused may have taken one or two: they back off, and wait)
        decisions.wait(lambda seen: seen[-1].waiting >= IMAGES - 2)

        # WHEN 30 days pass, a day per controller run
        refreshed = 0
        for _ in range(30):
            clock.advance(DAY)
            refreshed += decisions.next().refreshed
            decisions.next()  # and one more run on the same day (a sweep may take two)

        # THEN the queue still holds every image (twice refreshed, never past 14 days) ...
        assert refreshed >= 2 * IMAGES
        audited = audit.audit(target, prefix=target.input_prefix + "patient/")
        assert audited.counts == {"waiting": IMAGES}  # paused: waiting, never missing
        report = reprocess.reprocess(
            target, reprocess.Selection(missing=True), prefix=target.input_prefix + "patient/", dry_run=True
        )
        assert (report.selected, report.skipped) == (0, {"waiting": IMAGES})

        # ... and when the model is started, each gets its result
        assert lifecycle.start(1) is None
        found = uploads.wait_for(target, keys, timeout=120, progress=False, poll_seconds=0.5)
        letters = dead_letters(stack.client("sqs"), stack.resources.dead_letter_queue_url)

    assert {key: state.state for key, state in found.items()} == dict.fromkeys(keys, "ok")
    assert letters == []
