"""What the model controller decides, as a pure function of what it observes (no AWS here, no environment).

Every minute the controller looks at the configured model, the queue and the SQS trigger, and decides:

- The trigger runs only while the model is READY. Otherwise it is paused, so that images wait in the queue
  (retention 14 days) instead of spending their receives on a model that cannot answer and being
  dead-lettered: a stopped, starting, missing or not yet configured model costs no image anything.
- Auto mode (opt-in): a STOPPED model with images waiting is started; a READY model with nothing waiting
  and nothing in flight for ``idle_seconds`` is stopped (the trigger is paused first, so that images
  arriving meanwhile wait for the next start). A model whose service cannot start or stop it (a SageMaker
  endpoint) is never stopped: it keeps running and its trigger on.
- Nothing expires unseen: SQS drops a message after the queue's retention (14 days). While the trigger is
  paused, the waiting messages are refreshed (each sent again as a new message, then the old one deleted)
  before the oldest could reach it: ``refresh`` is due ``retention - REFRESH_MARGIN`` after the pause began or
  after the last refresh.

``Memory`` is what the controller keeps between runs (a small JSON document in SSM Parameter Store).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from enum import StrEnum

from lambdas.contract.backends.control import NOT_CONFIGURED, STOPPED, ModelStatus


class Action(StrEnum):
    """What the controller does to the model, beside pausing or resuming the trigger."""

    START = "start"
    STOP = "stop"


START, STOP = Action.START, Action.STOP
# Refresh the waiting messages this long before the oldest could expire (messages enqueued before the pause,
# retried with back-off, are younger than this); never later than three quarters of the retention.
REFRESH_MARGIN_SECONDS = 2 * 24 * 3600


@dataclass(frozen=True)
class Observation:
    model: ModelStatus
    waiting: int  # visible + delayed messages
    in_flight: int  # received and not yet deleted (being worked on, or backing off)
    trigger_enabled: bool
    now: float  # epoch seconds
    retention_seconds: float | None = None  # the queue's MessageRetentionPeriod


@dataclass(frozen=True)
class Memory:
    idle_since: float | None = None  # READY with nothing to do since then
    state: str | None = None  # the model's state the last time it was seen
    state_since: float | None = None  # when that state was first seen
    last_action: str | None = None
    last_action_at: float | None = None
    paused_since: float | None = None  # the trigger has been off since then (images wait in the queue)
    refreshed_at: float | None = None  # the waiting messages were last sent again then
    sweep: str | None = None  # a refresh under way (its copies carry this mark), finished by the next run

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | None) -> Memory:
        try:
            data = json.loads(raw or "{}")
        except json.JSONDecodeError:
            return cls()  # a hand-edited parameter must not stop the controller
        fields = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in fields}) if isinstance(data, dict) else cls()


@dataclass(frozen=True)
class Policy:
    auto: bool
    idle_seconds: float
    units: int


@dataclass(frozen=True)
class Decision:
    trigger_enabled: bool
    action: Action | None
    reason: str
    memory: Memory
    trigger_changed: bool
    waiting: int = 0
    refresh: bool = False  # send the waiting messages again before the queue's retention drops them
    refreshed: int = 0  # how many were sent again (set by the controller once done)


def decide(seen: Observation, memory: Memory, policy: Policy) -> Decision:
    model, now = seen.model, seen.now
    if memory.state != model.state:
        memory = replace(memory, state=model.state, state_since=now)
    busy = seen.waiting + seen.in_flight > 0
    action: Action | None = None
    enable = model.ready
    if model.ready:
        if busy or not policy.auto:
            memory = replace(memory, idle_since=None)
            reason = f"model ready; {seen.waiting} waiting, {seen.in_flight} in flight"
        else:
            idle_since = memory.idle_since if memory.idle_since is not None else now
            memory = replace(memory, idle_since=idle_since)
            idle = now - idle_since
            if not model.can_start_stop:
                # An endpoint is created and deleted, not stopped (a promoted challenger may bring one into an
                # auto-mode stack): the trigger stays on and the model keeps running.
                memory = replace(memory, idle_since=None)
                reason = f"model ready; {model.service_status} cannot be stopped, auto mode leaves it running"
            elif idle >= policy.idle_seconds:
                action, enable = STOP, False
                memory = replace(memory, idle_since=None)
                reason = f"idle for {idle:.0f} s (limit {policy.idle_seconds:.0f} s): stopping the model"
            else:
                reason = f"model ready and idle for {idle:.0f} s of {policy.idle_seconds:.0f} s"
    else:
        memory = replace(memory, idle_since=None)
        reason = f"model {model.state} ({model.service_status}); the trigger waits, {seen.waiting} images wait"
        if model.state == NOT_CONFIGURED:
            reason = f"no model configured ({model.detail}); {seen.waiting} images wait"
        elif policy.auto and model.state == STOPPED and model.can_start_stop and seen.waiting > 0:
            action = START
            reason = f"{seen.waiting} images wait and the model is stopped: starting it with {policy.units} unit(s)"
    if action:
        memory = replace(memory, last_action=action, last_action_at=now)
    refresh = False
    if enable:
        memory = replace(memory, paused_since=None, refreshed_at=None, sweep=None)
    else:
        paused_since = memory.paused_since if memory.paused_since is not None else now
        memory = replace(memory, paused_since=paused_since)
        due = refresh_due(seen, memory)
        if memory.sweep is not None or (due is not None and seen.waiting + seen.in_flight > 0):
            refresh = True
            reason += "; sending the waiting messages again before the queue's retention drops them"
    return Decision(
        trigger_enabled=enable,
        action=action,
        reason=reason,
        memory=memory,
        trigger_changed=enable != seen.trigger_enabled,
        waiting=seen.waiting,
        refresh=refresh,
    )


def refresh_due(seen: Observation, memory: Memory) -> float | None:
    """How old the oldest waiting message may be when it is time to send them again (None: not yet)."""
    if seen.retention_seconds is None or memory.paused_since is None:
        return None
    since = max(memory.paused_since, memory.refreshed_at or memory.paused_since)
    margin = min(REFRESH_MARGIN_SECONDS, seen.retention_seconds / 4)
    age = seen.now - since
    return age if age >= seen.retention_seconds - margin else None


def not_configured(detail: str) -> ModelStatus:
    return ModelStatus(None, NOT_CONFIGURED, "NotConfigured", detail=detail)
