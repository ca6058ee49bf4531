"""What a backend declares to be registered: its settings (environment variables and context keys), the IAM
statements the function needs for it (``grants.py``), the capacity it offers, and its model's control plane
(``control.py``). The function's adapter for each backend (the inference API call and the parsing of its answer)
lives with the function, in ``lambdas/inference/backends/``; how the embedded stack emulates each service lives
with the operator tool (``inferctl/emulator/models``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from lambdas.contract.backends.control import Lifecycle
from lambdas.contract.backends.grants import Arns, Grant
from lambdas.contract.variables import Variable

# What one image's answer may cost at most. SageMaker refuses responses above 6 MB itself; a container behind
# another endpoint may not. More labels than this per image are dropped, least confident first.
DEFAULT_MAX_RESPONSE_BYTES = 6 * 1024 * 1024
DEFAULT_MAX_LABELS = 1000


class BackendSpec(NamedTuple):
    name: str
    title: str
    settings_type: type[Any]
    variables: tuple[Variable, ...]
    model_variable: Variable  # the one that names the model (required before the function can work)
    grants: Callable[[Any, Arns], tuple[Grant, ...]]
    capacity: Callable[[Any], float | None]  # model calls per second it can take; None: not known
    lifecycle: Lifecycle
    runtime_service: str = ""  # the boto3 client name of the inference API

    def settings(self, values: Mapping[str, Any]) -> Any:
        return self.settings_type(**values)
