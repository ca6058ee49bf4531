"""The function's live configuration, changed safely: merged into the existing environment (never replacing
other variables), guarded by ``RevisionId`` against a concurrent change, validated by the rules the function
applies, waited on until active, and optionally written back to cdk.json so the next deploy keeps it.

Which variables an operator may change live is part of the environment contract (``Variable.live``).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from inferctl.stack.errors import OperationFailed
from inferctl.stack.target import Target
from inferctl.stack.uploads import iter_results
from lambdas.contract import rules
from lambdas.contract.rules import ConfigError
from lambdas.contract.settings import COMMON, Settings
from lambdas.contract.thresholds import Thresholds
from lambdas.contract.variables import Variable
from stacks.config import CDK_JSON as CDK_JSON  # the cdk.json the commands read and write by default
from stacks.config import cdk_json_context

LIVE: tuple[Variable, ...] = tuple(variable for variable in COMMON if variable.live)
BY_FIELD = {variable.field: variable for variable in LIVE}
UPDATE_ATTEMPTS = 3
ACTIVE_TIMEOUT_SECONDS = 120


class ConcurrentChange(OperationFailed):
    """Someone else changed a variable this change was about, between our read and our write."""


@dataclass(frozen=True)
class Live:
    environment: dict[str, str]
    revision_id: str
    last_update_status: str


@dataclass(frozen=True)
class Row:
    """One live variable across the places it is set: the running function, the deployed template (what the
    last deploy set), and cdk.json (what the next deploy will set)."""

    variable: Variable
    live: str | None
    deployed: str | None
    next_deploy: str | None

    @property
    def drifted(self) -> bool:
        """The live value is not what the deploy set (someone changed it on the function)."""
        return self.deployed is not None and self.live != self.deployed

    @property
    def reverts_on_deploy(self) -> bool:
        """The next deploy would change the live value back."""
        return self.next_deploy is not None and self.live != self.next_deploy


def live_settings(target: Target) -> Settings:
    """The function's settings as it runs now (its live environment): what ``reprocess --stale``, ``evaluate``
    and the other tools compare with."""
    return Settings.from_env(read_live(target).environment)


def read_live(target: Target) -> Live:
    configuration = target.client("lambda").get_function_configuration(FunctionName=_function(target))
    return Live(
        environment=dict(configuration.get("Environment", {}).get("Variables", {})),
        revision_id=str(configuration.get("RevisionId", "")),
        last_update_status=str(configuration.get("LastUpdateStatus", "Successful")),
    )


def deployed_environment(target: Target) -> dict[str, str] | None:
    """What the last deploy set: the function's variables in the deployed template (or what the embedded
    stack started with)."""
    if "deployed_environment" in target.outputs:
        return dict(target.outputs["deployed_environment"])
    if not target.stack_name:
        return None
    try:
        body = target.client("cloudformation").get_template(StackName=target.stack_name)["TemplateBody"]
    except Exception:  # noqa: BLE001 - drift is a nicety; the live values are what matter
        return None
    template = json.loads(body) if isinstance(body, str) else body
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Lambda::Function":
            variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
            if "INPUT_PREFIX" in variables:
                return {key: value for key, value in variables.items() if isinstance(value, str)}
    return None


def next_deploy_environment(path: Path = CDK_JSON, overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The live variables as cdk.json's context would set them."""
    from stacks.config import StackConfig

    settings = StackConfig.from_cdk_json(overrides, path).function
    env = settings.to_env()
    return {variable.env: env[variable.env] for variable in LIVE if variable.env and variable.env in env}


def show(target: Target, cdk_json: Path = CDK_JSON) -> list[Row]:
    live = read_live(target).environment
    deployed = deployed_environment(target) or {}
    next_deploy = next_deploy_environment(cdk_json) if cdk_json.exists() else {}
    return [
        Row(variable, live.get(name), deployed.get(name), next_deploy.get(name))
        for variable in LIVE
        if (name := variable.env)
    ]


def planned(environment: Mapping[str, str], changes: Mapping[str, Any]) -> dict[str, str]:
    """The environment with ``changes`` (field -> raw value) applied, each validated by the function's own
    rule; ConfigError names the variable before anything is sent. Label thresholds merge per label: a value
    of None removes that label's override."""
    result = dict(environment)
    for field_name, raw in changes.items():
        variable = BY_FIELD[field_name]
        assert variable.env is not None
        if field_name == "label_thresholds":
            current = variable.read(result.get(variable.env), variable.env) or {}
            value = variable.read(merge_labels(current, raw), variable.env)
        else:
            value = variable.read(raw, variable.env)
            if value is None:
                raise ConfigError(variable.env, "cannot be unset")
        result[variable.env] = variable.render(value)
    return result


def merge_labels(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Per-label thresholds with ``changes`` applied: a value sets that label's override, None removes it."""
    merged = {**current, **{label: value for label, value in changes.items() if value is not None}}
    for label, value in changes.items():
        if value is None:
            merged.pop(label, None)
    return merged


def thresholds_after(environment: Mapping[str, str], changes: Mapping[str, Any]) -> Thresholds:
    """The thresholds the function would run with once ``changes`` are applied to ``environment``."""
    return Settings.from_env(planned(environment, changes)).thresholds


def diff(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, tuple[str | None, str | None]]:
    keys = sorted(set(before) | set(after))
    return {key: (before.get(key), after.get(key)) for key in keys if before.get(key) != after.get(key)}


@dataclass(frozen=True)
class Applied:
    changes: dict[str, tuple[str | None, str | None]]
    revision_id: str | None
    dry_run: bool
    wrote_context: Path | None


def apply(
    target: Target,
    changes: Mapping[str, Any],
    *,
    dry_run: bool = False,
    write_context: Path | None = None,
    wait: bool = True,
    progress: Callable[[str], None] = lambda message: None,
) -> Applied:
    """Merge ``changes`` into the live environment, guarded by RevisionId; wait until the update is active."""
    applied = apply_plan(
        target, lambda environment: planned(environment, changes), dry_run=dry_run, wait=wait, progress=progress
    )
    if write_context and applied.changes and not dry_run:
        applied = replace(applied, wrote_context=_write_context(write_context, changes))
    return applied


def apply_plan(
    target: Target,
    plan: Callable[[dict[str, str]], dict[str, str]],
    *,
    dry_run: bool = False,
    wait: bool = True,
    progress: Callable[[str], None] = lambda message: None,
) -> Applied:
    """Replace the live environment with ``plan(live environment)``: computed from what is live now, guarded
    by RevisionId (a concurrent change to a variable the plan touches stops it; to others, it is merged
    again), waited on until active."""
    client = target.client("lambda")
    live = read_live(target)
    for _ in range(UPDATE_ATTEMPTS):
        after = plan(live.environment)
        changed = diff(live.environment, after)
        if dry_run or not changed:
            return Applied(changed, live.revision_id, dry_run, None)
        try:
            response = client.update_function_configuration(
                FunctionName=_function(target), Environment={"Variables": after}, RevisionId=live.revision_id
            )
        except client.exceptions.PreconditionFailedException:
            fresh = read_live(target)
            touched = set(changed)
            if set(diff(live.environment, fresh.environment)) & touched:
                raise ConcurrentChange(
                    f"{', '.join(sorted(touched))} changed on the function while this change was prepared; "
                    "look again and retry"
                ) from None
            progress("the function changed meanwhile (other variables): merging again")
            live = fresh
            continue
        revision = str(response.get("RevisionId", ""))
        if wait:
            _wait_until_active(target, progress)
        return Applied(changed, revision, False, None)
    raise ConcurrentChange("the function kept changing while this change was applied; try again")


def _wait_until_active(target: Target, progress: Callable[[str], None]) -> None:
    deadline = time.monotonic() + ACTIVE_TIMEOUT_SECONDS
    said = False
    while time.monotonic() < deadline:
        status = read_live(target).last_update_status
        if status == "Successful":
            return
        if status == "Failed":
            raise OperationFailed(
                "Lambda could not apply the update (LastUpdateStatus Failed): the function keeps its previous "
                "configuration; its LastUpdateStatusReason in the Lambda console says why"
            )
        if not said:
            progress("waiting for Lambda to apply the update (a few seconds)")
            said = True
        time.sleep(0.5)
    raise OperationFailed(
        f"Lambda had not applied the update after {ACTIVE_TIMEOUT_SECONDS} s: `inferctl thresholds show` tells "
        "whether it has since"
    )


def _write_context(path: Path, changes: Mapping[str, Any]) -> Path:
    """The same values in cdk.json's context, so that the next deploy keeps them."""
    document = json.loads(path.read_text(encoding="utf-8"))
    context = document.setdefault("context", {})
    for field_name, raw in changes.items():
        variable = BY_FIELD[field_name]
        assert variable.context is not None
        if field_name == "label_thresholds":
            merged = merge_labels(dict(cdk_json_context(path).get(variable.context) or {}), raw)
            context[variable.context] = {label: float(value) for label, value in sorted(merged.items())}
        else:
            context[variable.context] = variable.read(raw, variable.context)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _function(target: Target) -> str:
    if not target.function_name:
        raise ConfigError("FunctionName", f"{target.description} has no FunctionName output")
    return target.function_name


SEEN_SAMPLE = 1000  # results read to learn which labels the model produces, when it has no class list


def known_labels(stack: Target, environment: dict[str, str]) -> tuple[set[str], str] | None:
    """The labels the model can produce and where that comes from: its class list (SageMaker), or the labels and
    candidates of up to SEEN_SAMPLE stored results; None when neither says anything."""
    classes = environment.get("SAGEMAKER_CLASS_NAMES")
    if classes and environment.get("BACKEND", "sagemaker") == "sagemaker":
        with contextlib.suppress(ConfigError, ValueError):
            return set(rules.class_names("SAGEMAKER_CLASS_NAMES", classes).values()), "the model's class list"
    seen: set[str] = set()
    for count, document in enumerate(iter_results(stack), 1):
        seen |= {label["name"] for label in [*document.get("labels", []), *document.get("candidates", [])]}
        if count >= SEEN_SAMPLE:
            break
    return (seen, f"the stored results ({SEEN_SAMPLE:,} at most)") if seen else None
