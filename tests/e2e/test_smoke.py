"""``inferctl smoke`` on the embedded stack: it passes with a working model (latency and labels printed,
nothing left in the bucket) and fails, naming the reason, when the model is broken."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from inferctl import cli
from inferctl.emulator.models import stand_in
from inferctl.emulator.models.base import LocalModel, ModelFault
from inferctl.emulator.stack import EmbeddedStack, embedded_stack, write_state
from inferctl.scenarios.demo.run import demo_config
from stacks.definitions import SMOKE_FOLDER


class SwitchableModel:
    def __init__(self) -> None:
        self.fault: str | None = None

    def __call__(self, body: bytes, content_type: str) -> Any:
        if self.fault:
            raise ModelFault(self.fault, "the model is broken for this test")
        return stand_in.detect(body, content_type)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedStack, SwitchableModel, str]]:
    folder = tmp_path_factory.mktemp("smoke")
    model = SwitchableModel()
    models: dict[str, LocalModel] = {"stand-in-shapes": model}
    # One receive before the dead-letter queue; a 30 s function gives the model call a 5 s read, which a busy
    # machine's detector does not run out of.
    config = demo_config({"lambdaTimeoutSeconds": 30, "maxReceiveCount": 1, "retryDelayMaxSeconds": 1})
    with embedded_stack(config, models, log_path=folder / "lambda.log", capture_stdout=True) as stack:
        write_state(stack, folder / "embedded.json")
        yield stack, model, str(folder / "embedded.json")


def left_in_bucket(stack: EmbeddedStack) -> list[str]:
    """What smoke left besides results (a result is the function's: the bucket's lifecycle rule expires it)."""
    s3 = stack.client("s3")
    listed = s3.list_object_versions(Bucket=stack.resources.bucket, Prefix=f"test_images/{SMOKE_FOLDER}")
    keys = [item["Key"] for item in listed.get("Versions", []) + listed.get("DeleteMarkers", [])]
    return [key for key in keys if not key.endswith(".json")]


def test_smoke_passes_prints_latency_and_labels_and_cleans_up(running, capsys):
    stack, model, state = running
    model.fault = None

    assert cli.main(["smoke", "--embedded", state, "--timeout", "60"]) == 0

    out, err = capsys.readouterr()
    assert "smoke passed" in out
    assert re.search(r"result in \d+\.\d s; [a-z]+ \d+\.\d%", out), out  # "result in 1.2 s; sun 91.0%, ..."
    assert "cleaned up 1 object versions of the image" in err  # the result is left to the bucket's lifecycle
    assert left_in_bucket(stack) == []


def test_smoke_with_a_rejecting_model_fails_with_the_error_document(running, capsys):
    stack, model, state = running
    model.fault = "rejected"

    assert cli.main(["smoke", "--embedded", state, "--timeout", "60"]) == 1

    _, err = capsys.readouterr()
    assert "smoke FAILED" in err
    assert "error document: " in err
    assert left_in_bucket(stack) == []


def test_smoke_with_a_failing_model_names_the_dead_letter_and_the_logged_error(running, capsys):
    stack, model, state = running
    model.fault = "internal"

    assert cli.main(["smoke", "--embedded", state, "--timeout", "60"]) == 1

    _, err = capsys.readouterr()
    assert "smoke FAILED" in err
    assert "dead-letter queue" in err or "no result before the timeout" in err
    assert "last error logged: " in err
    assert left_in_bucket(stack) == []
