"""What one setting of the function is: its environment variable, its CDK context key, how it is validated
and written back. ``settings.py`` lists the function's own; each backend module lists its backend's.

Every layer uses these definitions: the stack writes the environment from context with them, the Lambda
reads it, the embedded stack builds the same environment, and the operator tool shows and changes it.
No AWS and no third-party imports.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from lambdas.contract.rules import ConfigError

# How long every AWS client of the function waits to connect (S3, the model services): part of the contract,
# since the stack derives the per-attempt read timeouts from the function's timeout minus this.
CONNECT_TIMEOUT_SECONDS = 2


def render_text(value: Any) -> str:
    return str(value)


def render_number(value: float) -> str:
    return f"{value:g}"


def render_json(value: Any) -> str:
    if isinstance(value, Mapping):
        value = {str(key): item for key, item in sorted(value.items(), key=lambda kv: str(kv[0]))}
    return json.dumps(value, sort_keys=False)


def render_list(value: Any) -> str:
    return ",".join(value)


def render_flag(value: Any) -> str:
    return "true" if value else "false"


class Variable(NamedTuple):
    """One setting. ``env`` is None for settings only the stack uses (IAM, capacity); ``context`` is None for
    values the stack derives or provides itself (timeouts, the key ARN)."""

    field: str
    env: str | None
    context: str | None
    parse: Callable[[str, Any], Any]
    default: Any = None
    render: Callable[[Any], str] = render_text
    doc: str = ""
    live: bool = False  # operators may change it on the running function (the thresholds command)
    written: bool = True  # False: set by Lambda itself (reserved), read but never written by the stack

    @property
    def name(self) -> str:
        return self.env or self.context or self.field

    def read(self, raw: Any, name: str | None = None) -> Any:
        """The parsed value of ``raw`` (a string from the environment or a JSON value from context); the
        default when it is absent or blank. ConfigError names ``name`` (the variable or context key)."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return self.default
        return self.parse(name or self.name, raw)

    def prefixed(self, env_prefix: str, context_prefix: str) -> Variable:
        """The same setting for a second model (the challenger): ``CHALLENGER_X`` / ``challengerX``."""
        context = self.context and context_prefix + self.context[0].upper() + self.context[1:]
        return Variable(
            field=self.field,
            env=self.env and env_prefix + self.env,
            context=context,
            parse=self.parse,
            default=self.default,
            render=self.render,
            doc=self.doc,
            live=self.live,
            written=self.written,
        )


def read_all(variables: tuple[Variable, ...], get: Callable[[Variable], Any], by: str) -> dict[str, Any]:
    """Parse every variable with ``get``; errors name the variable's ``by`` attribute (env or context)."""
    values: dict[str, Any] = {}
    for variable in variables:
        name = getattr(variable, by) or variable.name
        values[variable.field] = variable.read(get(variable), name)
    return values


def render_env(variables: Iterable[Variable], values: Any) -> dict[str, str]:
    """The environment that reads back as ``values`` (an object with one attribute per variable's field): every
    variable the stack writes, unset values left out."""
    env: dict[str, str] = {}
    for variable in variables:
        value = getattr(values, variable.field)
        if variable.env and variable.written and value is not None:
            env[variable.env] = variable.render(value)
    return env


def require(value: Any, variable: Variable, by: str, why: str) -> Any:
    """``value``, or ConfigError naming the variable (its ``by`` name: env or context) when it is not set."""
    if value is None or value == "":
        raise ConfigError(str(getattr(variable, by, None) or variable.name), f"is not set; {why}")
    return value
