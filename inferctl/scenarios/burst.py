"""A bulk upload against a model of limited capacity, on the embedded stack with the default settings:
1,000 images, a model that takes 5 calls per second (one Rekognition inference unit). Healthy images must
not be dead-lettered: the function keeps to its share of the capacity, and a throttled record steps back.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferctl.emulator.models import stand_in
from inferctl.emulator.models.capacity import LimitedModel
from inferctl.emulator.stack import embedded_stack
from inferctl.samples import scene
from inferctl.scenarios.demo.run import demo_config, demo_models
from inferctl.stack import uploads
from inferctl.stack.deadletters import dead_letters
from inferctl.stack.target import from_outputs


@dataclass(frozen=True)
class BurstReport:
    images: int
    outcomes: dict[str, int]
    dead_letters: int
    model_calls: int
    throttled: int
    seconds: float
    messages_received: int
    environments: int

    @property
    def throttled_ratio(self) -> float:
        return self.throttled / self.model_calls if self.model_calls else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "throttled_ratio": round(self.throttled_ratio, 4)}


def small_jpeg(index: int) -> bytes:
    buffer = io.BytesIO()
    scene(index, ["sun", "tree", "car"]).resize((160, 120)).save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def run(
    count: int = 1000,
    per_second: float = 5.0,
    out: Path | None = None,
    timeout: float = 900.0,
    progress: bool = True,
    overrides: dict[str, Any] | None = None,
) -> BurstReport:
    """Upload ``count`` images at once and wait for every outcome; the stack's configuration is cdk.json's
    (the Rekognition backend, one inference unit) pointed at the demo model, limited to ``per_second``."""
    config = demo_config({"backend": "rekognition", **(overrides or {})})
    model = LimitedModel(stand_in.detect, per_second)
    items = [(f"burst/{index:05d}.jpg", small_jpeg(index % 50)) for index in range(count)]
    log_path = (out / "lambda.log") if out else None
    started = time.monotonic()
    with embedded_stack(config, demo_models(model), log_path=log_path, capture_stdout=True) as stack:
        target = from_outputs(stack.session, stack.state(), None, "embedded")
        sent = uploads.upload_many(target, items, progress=progress)
        found = uploads.wait_for(target, [u.key for u in sent], timeout=timeout, progress=progress, poll_seconds=2)
        letters = dead_letters(stack.client("sqs"), stack.resources.dead_letter_queue_url)
        received = stack.trigger.stats.received
        environments = stack.trigger.containers
    outcomes: dict[str, int] = {}
    for state in found.values():
        outcomes[state.state] = outcomes.get(state.state, 0) + 1
    return BurstReport(
        images=count,
        outcomes=outcomes,
        dead_letters=len(letters),
        model_calls=model.calls,
        throttled=model.throttled,
        seconds=time.monotonic() - started,
        messages_received=received,
        environments=environments,
    )
