"""The model controller's environment, defined once: what the stack writes and the controller reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lambdas.contract.rules import flag, integer, number, text
from lambdas.contract.variables import Variable, read_all, render_env, render_flag, render_number, require
from lambdas.controller.decide import Policy

CONTROLLER_VARIABLES: tuple[Variable, ...] = (
    Variable("function_name", "CONTROLLED_FUNCTION_NAME", None, text, doc="the inference function it controls"),
    Variable("queue_url", "QUEUE_URL", None, text, doc="the queue whose backlog it watches"),
    Variable("mapping_id", "EVENT_SOURCE_MAPPING_ID", None, text, doc="the SQS trigger it pauses and resumes"),
    Variable("state_parameter", "CONTROLLER_STATE_PARAMETER", None, text, doc="SSM parameter it remembers in"),
    Variable(
        "auto",
        "AUTO_MODE",
        "autoMode",
        flag,
        False,
        render=render_flag,
        doc="start the model when images wait, stop it after modelIdleMinutes (Rekognition)",
    ),
    Variable(
        "idle_minutes",
        "MODEL_IDLE_MINUTES",
        "modelIdleMinutes",
        lambda name, raw: number(name, raw, 0.01, 1440.0),
        15.0,
        render=render_number,
        doc="auto mode stops the model after this long with nothing waiting or in flight",
    ),
    Variable(
        "start_units",
        "START_INFERENCE_UNITS",
        None,
        lambda name, raw: integer(name, raw, 1, 1000),
        1,
        doc="inference units an automatic start asks for (from inferenceUnits)",
    ),
)


@dataclass(frozen=True)
class ControllerSettings:
    function_name: str | None
    queue_url: str | None
    mapping_id: str | None
    state_parameter: str | None
    auto: bool
    idle_minutes: float
    start_units: int

    @property
    def policy(self) -> Policy:
        return Policy(auto=self.auto, idle_seconds=self.idle_minutes * 60, units=self.start_units)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ControllerSettings:
        values = read_all(CONTROLLER_VARIABLES, lambda variable: env.get(variable.env) if variable.env else None, "env")
        for variable in CONTROLLER_VARIABLES:
            if variable.field in ("function_name", "queue_url", "mapping_id"):
                require(values[variable.field], variable, "env", "the stack sets it")
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        return render_env(CONTROLLER_VARIABLES, self)
