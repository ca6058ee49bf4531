"""One contract for the function's environment: the stack writes it from context, the Lambda reads it back,
the configuration reference (docs/configuration.md) documents it. Checked for every registered backend."""

from __future__ import annotations

import re

import pytest

from lambdas.contract import backends, settings
from lambdas.contract.settings import COMMON, Settings
from lambdas.controller.settings import CONTROLLER_VARIABLES
from stacks.config import StackConfig, known_context_keys
from tests.support.paths import ROOT

REFERENCE = ROOT / "docs" / "configuration.md"
ALL_VARIABLES = (
    COMMON
    + tuple(variable for spec in backends.specs() for variable in spec.variables)
    + CONTROLLER_VARIABLES
    + settings.all_variables()
)
MODEL_IDS = {
    "rekognition": "arn:aws:rekognition:eu-west-1:123456789012:project/p/version/v.2025-01-01T00.00.00/1735725600000",
    "sagemaker": "flower-detector",
}


def test_every_variable_and_context_key_is_defined_once():
    # QUEUE_URL is in both functions' environments, with the same meaning
    envs = [v.env for v in ALL_VARIABLES if v.env and v not in CONTROLLER_VARIABLES[1:2]]
    contexts = [v.context for v in ALL_VARIABLES if v.context]
    assert len(envs) == len(set(envs))
    assert len(contexts) == len(set(contexts))


@pytest.mark.parametrize("backend", backends.REGISTERED)
def test_what_the_stack_writes_is_what_the_function_reads(backend):
    spec = backends.spec(backend)
    context = {"backend": backend, spec.model_variable.context: MODEL_IDS.get(backend, "model-1")}
    context.update({"minConfidence": "72.5", "labelThresholds": {"cat": 90}, "imageSuffixes": [".jpg", ".PNG"]})
    config = StackConfig.from_context(context.get)

    settings = Settings.from_env(config.lambda_environment())

    assert settings == config.function_settings
    assert settings.require_model() == context[spec.model_variable.context]
    assert settings.min_confidence == 72.5
    assert settings.image_suffixes == (".jpg", ".png")


@pytest.mark.parametrize("variable", [v for v in ALL_VARIABLES if v.env], ids=lambda v: v.env)
def test_the_reference_documents_every_variable(variable):
    assert re.search(rf"`{variable.env}`", REFERENCE.read_text(encoding="utf-8")), f"{variable.env} not documented"


@pytest.mark.parametrize("variable", [v for v in ALL_VARIABLES if v.context], ids=lambda v: v.context)
def test_the_reference_documents_every_context_key(variable):
    text = REFERENCE.read_text(encoding="utf-8")
    assert re.search(rf"`{variable.context}`", text), f"{variable.context} not documented"


def test_the_reference_documents_every_key_the_stack_reads():
    text = REFERENCE.read_text(encoding="utf-8")
    assert sorted(key for key in known_context_keys() if f"`{key}`" not in text) == []


def test_each_variable_has_one_row_in_the_reference():
    """A variable documented in two rows drifts: each appears in exactly one row of the variables table."""
    table = REFERENCE.read_text(encoding="utf-8").split("## Lambda environment variables", 1)[1].split("\n## ")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    for variable in (v for v in COMMON if v.env):
        assert sum(f"`{variable.env}`" in row for row in rows) == 1, variable.env
