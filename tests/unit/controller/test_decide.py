"""The model controller's decisions: the trigger runs only while the model is ready; auto mode starts a stopped
model for waiting images and stops an idle one."""

from __future__ import annotations

import pytest

from lambdas.contract.backends.control import FAILED, MISSING, READY, STARTING, STOPPED, STOPPING, ModelStatus
from lambdas.controller.decide import START, STOP, Memory, Observation, Policy, decide, not_configured

AUTO = Policy(auto=True, idle_seconds=900, units=2)
MANUAL = Policy(auto=False, idle_seconds=900, units=2)


def model(state: str, can_start_stop: bool = True) -> ModelStatus:
    return ModelStatus("arn:model", state, state.title(), can_start_stop=can_start_stop)


def seen(state: ModelStatus, waiting: int = 0, in_flight: int = 0, enabled: bool = True, now: float = 1000.0):
    return Observation(model=state, waiting=waiting, in_flight=in_flight, trigger_enabled=enabled, now=now)


@pytest.mark.parametrize("state", [STARTING, STOPPING, STOPPED, FAILED, MISSING])
def test_a_model_that_cannot_answer_pauses_the_trigger(state):
    decision = decide(seen(model(state), waiting=5), Memory(), MANUAL)
    assert decision.trigger_enabled is False
    assert decision.trigger_changed is True
    assert decision.action is None


def test_no_model_configured_pauses_the_trigger_and_starts_nothing_even_in_auto_mode():
    decision = decide(seen(not_configured("REKOGNITION_MODEL_ARN is not set"), waiting=3), Memory(), AUTO)
    assert (decision.trigger_enabled, decision.action) == (False, None)
    assert "no model configured" in decision.reason


def test_a_ready_model_resumes_a_paused_trigger():
    decision = decide(seen(model(READY), waiting=5, enabled=False), Memory(), MANUAL)
    assert (decision.trigger_enabled, decision.trigger_changed, decision.action) == (True, True, None)


def test_auto_mode_starts_a_stopped_model_with_the_configured_units_only_when_images_wait():
    assert decide(seen(model(STOPPED), waiting=0, enabled=False), Memory(), AUTO).action is None
    decision = decide(seen(model(STOPPED), waiting=7, enabled=False), Memory(), AUTO)
    assert decision.action == START
    assert decision.trigger_enabled is False  # resumed only once the model runs
    assert "2 unit(s)" in decision.reason
    assert decision.memory.last_action == START


def test_without_auto_mode_a_stopped_model_is_left_stopped():
    assert decide(seen(model(STOPPED), waiting=7), Memory(), MANUAL).action is None


def test_an_endpoint_that_cannot_be_started_is_never_started():
    assert decide(seen(model(STOPPED, can_start_stop=False), waiting=7), Memory(), AUTO).action is None


def test_a_starting_or_stopping_model_gets_no_second_request():
    for state in (STARTING, STOPPING):
        assert decide(seen(model(state), waiting=7), Memory(), AUTO).action is None


def test_auto_mode_stops_a_model_idle_for_the_idle_time_and_pauses_the_trigger_first():
    first = decide(seen(model(READY), now=1000.0), Memory(), AUTO)
    assert (first.action, first.memory.idle_since) == (None, 1000.0)
    almost = decide(seen(model(READY), now=1899.0), first.memory, AUTO)
    assert almost.action is None
    due = decide(seen(model(READY), now=1900.0), almost.memory, AUTO)
    assert due.action == STOP
    assert due.trigger_enabled is False
    assert due.memory.idle_since is None


def test_messages_in_flight_or_waiting_reset_the_idle_clock():
    idle = decide(seen(model(READY), now=1000.0), Memory(), AUTO).memory
    busy = decide(seen(model(READY), in_flight=1, now=1800.0), idle, AUTO)
    assert busy.memory.idle_since is None
    again = decide(seen(model(READY), now=2000.0), busy.memory, AUTO)
    assert again.memory.idle_since == 2000.0
    assert decide(seen(model(READY), now=2899.0), again.memory, AUTO).action is None


def test_without_auto_mode_an_idle_model_keeps_running():
    memory = Memory(idle_since=0.0)
    assert decide(seen(model(READY), now=100_000.0), memory, MANUAL).action is None


def test_the_state_and_since_when_are_remembered_across_runs():
    first = decide(seen(model(STOPPED), now=10.0), Memory(), MANUAL).memory
    same = decide(seen(model(STOPPED), now=70.0), first, MANUAL).memory
    changed = decide(seen(model(READY), now=130.0), same, MANUAL).memory
    assert (first.state, first.state_since) == (STOPPED, 10.0)
    assert same.state_since == 10.0
    assert (changed.state, changed.state_since) == (READY, 130.0)


def test_memory_survives_json_and_a_hand_edited_parameter_does_not_stop_the_controller():
    memory = Memory(idle_since=1.5, state=READY, state_since=1.0, last_action=START, last_action_at=0.5)
    assert Memory.from_json(memory.to_json()) == memory
    assert Memory.from_json("not json") == Memory()
    assert Memory.from_json('{"idle_since": 3, "unknown": 1}') == Memory(idle_since=3)
    assert Memory.from_json("[]") == Memory()


# --- every backend x mode x state ------------------------------------------------------------------------------

# (trigger on?, action) for: manual mode / auto mode with a model that can stop / auto mode with one that cannot
ROWS = {
    "ready, images waiting": ((True, None), (True, None), (True, None)),
    "ready, idle past the limit": ((True, None), (False, STOP), (True, None)),
    "ready, idle within the limit": ((True, None), (True, None), (True, None)),
    "stopped, images waiting": ((False, None), (False, START), (False, None)),
    "stopped, nothing waiting": ((False, None), (False, None), (False, None)),
    "starting": ((False, None), (False, None), (False, None)),
    "stopping": ((False, None), (False, None), (False, None)),
    "failed": ((False, None), (False, None), (False, None)),
    "missing": ((False, None), (False, None), (False, None)),
    "not configured": ((False, None), (False, None), (False, None)),
}
SITUATIONS = {  # state, waiting, idle since (seconds before now; None: not idle yet)
    "ready, images waiting": (READY, 4, None),
    "ready, idle past the limit": (READY, 0, 1200),
    "ready, idle within the limit": (READY, 0, 300),
    "stopped, images waiting": (STOPPED, 4, None),
    "stopped, nothing waiting": (STOPPED, 0, None),
    "starting": (STARTING, 4, None),
    "stopping": (STOPPING, 4, None),
    "failed": (FAILED, 4, None),
    "missing": (MISSING, 4, None),
    "not configured": ("NOT_CONFIGURED", 4, None),
}


def _table() -> list[tuple[str, str, str]]:
    from lambdas.contract.backends import REGISTERED

    return [(backend, mode, row) for backend in REGISTERED for mode in ("manual", "auto") for row in ROWS]


@pytest.mark.parametrize(("backend", "mode", "row"), _table())
def test_the_decision_for_every_backend_mode_and_state(backend, mode, row):
    from lambdas.contract.backends import spec

    can_stop = spec(backend).lifecycle.can_start_stop
    state, waiting, idle_for = SITUATIONS[row]
    status = not_configured("unset") if state == "NOT_CONFIGURED" else model(state, can_start_stop=can_stop)
    memory = Memory(state=state, state_since=0.0, idle_since=None if idle_for is None else 10_000.0 - idle_for)
    decision = decide(seen(status, waiting=waiting, now=10_000.0), memory, AUTO if mode == "auto" else MANUAL)

    column = 0 if mode == "manual" else (1 if can_stop else 2)
    assert (decision.trigger_enabled, decision.action) == ROWS[row][column]


def test_auto_mode_is_refused_at_synth_for_a_backend_that_cannot_stop_naming_the_key():
    from lambdas.contract.rules import ConfigError
    from stacks.config import StackConfig

    with pytest.raises(ConfigError) as raised:
        StackConfig.from_cdk_json({"backend": "sagemaker", "sagemakerEndpointName": "ep", "autoMode": True})
    assert raised.value.setting == "autoMode"
    assert "cannot be started or stopped" in str(raised.value)
    assert StackConfig.from_cdk_json({"backend": "rekognition", "autoMode": True}).auto_mode


# --- keeping waiting images past the queue's retention ----------------------------------------------------------

RETENTION = 14 * 24 * 3600.0


def test_waiting_messages_are_sent_again_before_the_queues_retention_drops_them():
    stopped = model(STOPPED)

    def look(now: float, memory: Memory) -> tuple[bool, Memory]:
        observed = Observation(
            model=stopped, waiting=20, in_flight=0, trigger_enabled=False, now=now, retention_seconds=RETENTION
        )
        decision = decide(observed, memory, MANUAL)
        return decision.refresh, decision.memory

    refresh, memory = look(0.0, Memory())
    assert (refresh, memory.paused_since) == (False, 0.0)
    day = 24 * 3600.0
    assert look(11.9 * day, memory)[0] is False
    refresh, memory = look(12.0 * day, memory)  # 14 days - 2 days of margin
    assert refresh is True
    # the controller records the sweep as done; the next one is due 12 days later
    memory = Memory(**{**memory.__dict__, "refreshed_at": 12.0 * day})
    assert look(23.9 * day, memory)[0] is False
    assert look(24.0 * day, memory)[0] is True


def test_nothing_is_sent_again_while_the_trigger_runs_or_nothing_waits():
    long_ago = Memory(paused_since=0.0)
    ready = Observation(
        model=model(READY), waiting=20, in_flight=0, trigger_enabled=True, now=30 * 86400.0, retention_seconds=RETENTION
    )
    assert decide(ready, long_ago, MANUAL).refresh is False
    empty = Observation(
        model=model(STOPPED),
        waiting=0,
        in_flight=0,
        trigger_enabled=False,
        now=30 * 86400.0,
        retention_seconds=RETENTION,
    )
    assert decide(empty, long_ago, MANUAL).refresh is False
    # a sweep under way is finished even if the queue looks empty
    assert decide(empty, Memory(paused_since=0.0, sweep="sweep-1"), MANUAL).refresh is True
