"""The garbage collector during an execution environment's start (collector.py): paused from the function's first
import until its environment is built, in Lambda only; then what was built is frozen and collection resumes, also
when the environment cannot be built."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from lambdas.inference import collector
from tests.support.fresh import run_probe

IN_LAMBDA = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}
ARN = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v.1/1700000000000"


@pytest.fixture
def restored() -> Iterator[None]:
    """This test process's collector as it was, whatever the test did to it."""
    enabled = gc.isenabled()
    try:
        yield
    finally:
        collector.resume()
        gc.unfreeze()
        (gc.enable if enabled else gc.disable)()


@pytest.mark.usefixtures("restored")
def test_pause_and_resume_in_an_execution_environment():
    frozen = gc.get_freeze_count()
    assert collector.pause(IN_LAMBDA) is True
    assert not gc.isenabled()
    assert collector.pause(IN_LAMBDA) is True  # once: a second call changes nothing
    collector.resume()
    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen  # what the start made is out of the collector's scans
    collector.resume()  # nothing left to resume
    assert gc.isenabled()


@pytest.mark.usefixtures("restored")
def test_nothing_changes_outside_lambda_or_when_the_collector_was_already_off():
    assert collector.pause({}) is False
    assert gc.isenabled()
    gc.disable()  # someone else's decision: not ours to undo
    assert collector.pause(IN_LAMBDA) is False
    collector.resume()
    assert not gc.isenabled()


# A fresh interpreter, as Lambda starts one: the handler's module imported (the init phase), then the first invoke's
# runtime built, the collector's state read at each step.
PROBE = """
import gc, json
from lambdas.inference import handler  # noqa: F401
from lambdas.inference import environment
seen = {"imported": gc.isenabled(), "frozen_at_import": gc.get_freeze_count()}
try:
    environment.runtime()
    seen["built"] = True
except Exception as exc:
    seen["built"] = type(exc).__name__
seen.update(after=gc.isenabled(), frozen=gc.get_freeze_count())
print(json.dumps(seen))
"""


@pytest.mark.parametrize(
    ("variables", "built", "paused"),
    [
        ({**IN_LAMBDA, "REKOGNITION_MODEL_ARN": ARN}, True, True),
        ({**IN_LAMBDA, "REKOGNITION_MODEL_ARN": "not-an-arn"}, "ConfigError", True),
        ({"REKOGNITION_MODEL_ARN": ARN}, True, False),
    ],
    ids=["in-lambda", "in-lambda-bad-setting", "elsewhere"],
)
def test_a_fresh_environment_starts_with_the_collector_paused_and_ends_its_start_with_it_running(
    variables: dict[str, str], built: bool | str, paused: bool
):
    seen = run_probe(PROBE, {**variables, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}).last
    assert seen["built"] == built
    assert seen["imported"] is not paused  # the whole import ran with the collector off, in Lambda only
    assert seen["frozen_at_import"] == 0
    assert seen["after"] is True  # running again once the start is over, built or not
    assert (seen["frozen"] > 10_000) is paused  # the start's objects (modules, clients), frozen in Lambda only


def test_a_process_that_imports_the_package_but_not_the_handler_keeps_collecting_in_lambda():
    """The decode helper (images/sandbox.py) inherits the function's environment and imports the package, and never
    builds a runtime: were the pause the package's, its collector would stay off for the environment's life."""
    probe = "import gc, json; from lambdas.inference.images import sandbox, decode; print(json.dumps(gc.isenabled()))"
    assert run_probe(probe, IN_LAMBDA).last is True
