"""``inferctl challenger promote`` / ``retire``: swap the challenger and the primary, or drop the challenger,
through the same safe path as thresholds (the live environment merged, guarded by RevisionId, validated by
the function's own rules before anything is sent, optionally written back to cdk.json).

The function's role already allows both models (the stack grants the challenger's model too), so a swap needs
no deploy. Results written before the swap name the old primary's model: ``inferctl reprocess --stale``
re-runs them through the new one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from inferctl.stack.configuration import Applied, apply_plan, read_live
from inferctl.stack.target import Target
from lambdas.contract import backends
from lambdas.contract.rules import ConfigError
from lambdas.contract.settings import (
    COMMON,
    CONTEXT_PREFIX,
    ENV_PREFIX,
    OWN,
    SAMPLE_PERCENT,
    ChallengerSettings,
    Settings,
)
from lambdas.contract.variables import render_env

BACKEND_ENV = next(variable.env for variable in COMMON if variable.field == "backend")


def _model_env(backend: str, model: Any) -> dict[str, str]:
    return render_env(backends.spec(backend).variables, model)


def _without_models(environment: dict[str, str], settings: Settings) -> dict[str, str]:
    primary = {variable.env for variable in settings.spec.variables if variable.env}
    return {key: value for key, value in environment.items() if key not in primary and not key.startswith(ENV_PREFIX)}


def swapped(environment: dict[str, str]) -> dict[str, str]:
    """The challenger becomes the primary and the primary the challenger (same sample rate)."""
    settings = Settings.from_env(environment)
    challenger = settings.challenger
    if not challenger.enabled:
        raise ConfigError(str(OWN[0].env), "no challenger is configured: nothing to promote")
    assert challenger.backend is not None
    after = _without_models(environment, settings)
    after[str(BACKEND_ENV)] = challenger.backend
    after.update(_model_env(challenger.backend, challenger.model))
    after.update(ChallengerSettings(settings.backend, challenger.sample_percent, settings.model).to_env())
    Settings.from_env(after).require_model()  # what the function will read: refused here if it would not work
    return after


def retired(environment: dict[str, str]) -> dict[str, str]:
    """The primary stays; the challenger's variables go."""
    settings = Settings.from_env(environment)
    if not settings.challenger.enabled:
        raise ConfigError(str(OWN[0].env), "no challenger is configured: nothing to retire")
    return {key: value for key, value in environment.items() if not key.startswith(ENV_PREFIX)}


def promote(
    target: Target,
    *,
    retire: bool = False,
    dry_run: bool = False,
    write_context: Path | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> Applied:
    plan = retired if retire else swapped
    applied = apply_plan(target, plan, dry_run=dry_run, progress=progress)
    if write_context and applied.changes and not dry_run:
        _write_context(write_context, Settings.from_env(read_live(target).environment))
        applied = replace(applied, wrote_context=write_context)
    return applied


def _write_context(path: Path, settings: Settings) -> None:
    """cdk.json's context as the function now runs: backend, model keys, challenger keys."""
    document = json.loads(path.read_text(encoding="utf-8"))
    context = document.setdefault("context", {})
    for key in [key for key in context if key.startswith(CONTEXT_PREFIX) and key != SAMPLE_PERCENT.context]:
        del context[key]
    context["backend"] = settings.backend
    if context.get("autoMode") in (True, "true") and not settings.spec.lifecycle.can_start_stop:
        # Auto mode cannot start or stop this backend's model and the stack refuses the pair at synth: the
        # written context must deploy. (Live, the controller already leaves such a model running.)
        context["autoMode"] = False
    for variable in settings.spec.variables:
        value = getattr(settings.model, variable.field)
        if variable.context and value is not None and variable.env:
            context[variable.context] = value
    challenger = settings.challenger
    if challenger.enabled:
        assert challenger.backend is not None
        context[str(OWN[0].context)] = challenger.backend
        for variable in backends.spec(challenger.backend).variables:
            value = getattr(challenger.model, variable.field)
            if variable.context and value is not None and variable.env:
                prefixed = variable.prefixed(ENV_PREFIX, CONTEXT_PREFIX)
                context[str(prefixed.context)] = value
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
