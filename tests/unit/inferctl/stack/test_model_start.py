"""`inferctl model start` waits for the model by checking its status after a second, then twice as long each time up
to ``--poll``: a model that runs in seconds (the embedded one) is seen running in seconds, one that takes AWS's
minutes is checked every 30 s once the wait is long."""

from __future__ import annotations

from typing import cast

import pytest

from inferctl.stack import model_control
from inferctl.stack.target import Target
from lambdas.contract.backends.control import READY, STARTING, STOPPED, ModelStatus


class Model:
    """A control plane whose model is STARTING for ``checks`` status checks after the start, then READY."""

    def __init__(self, checks: int) -> None:
        self.states = [STOPPED] + [STARTING] * checks + [READY]
        self.started = 0

    def describe(self) -> ModelStatus:
        state = self.states[0] if len(self.states) == 1 else self.states.pop(0)
        return ModelStatus("model", state, state)

    def start(self, units: int) -> None:
        self.started += units


@pytest.mark.parametrize(
    ("checks", "poll", "waits"),
    [
        (3, 30.0, [1.0, 2.0, 4.0]),
        (8, 30.0, [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]),
        (3, 0.2, [0.2, 0.2, 0.2]),  # --poll below the first wait
    ],
)
def test_the_checks_start_after_a_second_and_double_up_to_the_poll(
    monkeypatch: pytest.MonkeyPatch, checks: int, poll: float, waits: list[float]
) -> None:
    model, slept = Model(checks), list[float]()
    monkeypatch.setattr(model_control, "control", lambda target: (None, model))
    monkeypatch.setattr("inferctl.stack.model_control.time.sleep", slept.append)

    found = model_control.start(cast(Target, None), units=2, poll_seconds=poll)

    assert (found.state, model.started) == (READY, 2)
    assert slept == waits


def test_without_wait_it_returns_once_requested(monkeypatch: pytest.MonkeyPatch) -> None:
    model, slept = Model(5), list[float]()
    monkeypatch.setattr(model_control, "control", lambda target: (None, model))
    monkeypatch.setattr("inferctl.stack.model_control.time.sleep", slept.append)

    assert model_control.start(cast(Target, None), units=1, wait=False).state == STARTING
    assert slept == []
