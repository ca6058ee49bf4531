"""The operator commands read the embedded stack as they read a deployed one: ``cost`` from the CloudWatch
metrics the function's log and its invocations produce (the embedded stack publishes them as CloudWatch Logs
and Lambda would), ``model status`` with what the model has cost today, and ``env`` with what the AWS CLI and
any SDK need to reach the embedded stack (its endpoints and its dummy credentials)."""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from inferctl import cli
from inferctl.emulator.stack import embedded_stack, write_state
from inferctl.scenarios.demo.run import demo_config, demo_models
from inferctl.stack import uploads
from inferctl.stack.spend import spend
from inferctl.stack.target import embedded
from tests.support.paths import ROOT

IMAGES = 12


def jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (seed * 19 % 255, 120, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


BEFORE: dict[str, float] = {}  # what the emulator's CloudWatch held before: moto's state is per process


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("operator")
    with embedded_stack(demo_config(), demo_models(), log_path=folder / "lambda.log", capture_stdout=True) as stack:
        path = folder / "embedded.json"
        write_state(stack, path)
        target = embedded(path)
        before = spend(target, units=1, days=1)
        BEFORE.update(images=before.images, lambda_usd=before.parts["lambda"])
        keys = [u.key for u in uploads.upload_many(target, [(f"{i}.jpg", jpeg(i)) for i in range(IMAGES)], False)]
        assert all(found.state == "ok" for found in uploads.wait_for(target, keys, 120, progress=False).values())
        # The results are written before the invocation ends and its log (with its metrics) is shipped: as on
        # AWS, the metrics come a moment later. Wait for them.
        deadline = time.monotonic() + 60
        while spend(target, units=1, days=1).images < BEFORE["images"] + IMAGES and time.monotonic() < deadline:
            time.sleep(0.2)
        yield str(path)


def test_cost_counts_the_images_from_the_metrics(state, capsys):
    assert cli.main(["cost", "--days", "1", "--format", "json", "--embedded", state]) == 0
    spend = json.loads(capsys.readouterr().out)
    # ImagesProcessed, from the function's embedded-metric-format lines (beyond what earlier stacks in this
    # process left in the emulator's CloudWatch)
    assert spend["images"] - BEFORE["images"] == IMAGES
    assert spend["usd"]["lambda"] > BEFORE["lambda_usd"]  # AWS/Lambda Invocations and Duration
    (model,) = [part for part in spend["usd"] if part.startswith("model")]
    assert "ml.m5.xlarge" in model  # the real-time endpoint's instance hours
    assert spend["usd_per_1000_images"]["lambda"] == pytest.approx(spend["usd"]["lambda"] * 1000 / spend["images"])


def test_model_status_says_what_the_endpoint_cost_today(state, capsys):
    assert cli.main(["model", "status", "--format", "json", "--embedded", state]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["backend"], status["state"]) == ("sagemaker", "READY")
    assert status["since"] is not None
    assert status["cost_today_usd"] is not None
    assert status["cost_today_usd"] >= 0
    assert "ml.m5.xlarge" in status["cost_basis"]
    assert "0.23 an hour" in status["cost_basis"]  # the dated list price


def test_env_points_any_sdk_at_the_embedded_stack(state, capsys):
    assert cli.main(["env", "--embedded", state]) == 0
    exports = capsys.readouterr().out
    variables = {}
    for line in exports.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            variables[name] = shlex.split(value)[0]
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "BUCKET"):
        assert variables[name]
    # A fresh process with only those variables (as after `eval "$(inferctl env --embedded)"`): plain boto3
    # clients, no endpoint in the code, reach the stack's bucket and its function.
    script = (
        "import boto3, os; "
        "s3 = boto3.client('s3'); "
        "keys = s3.list_objects_v2(Bucket=os.environ['BUCKET'], Prefix=os.environ['INPUT_PREFIX'])['KeyCount']; "
        "fn = boto3.client('lambda').get_function_configuration(FunctionName=os.environ['FUNCTION_NAME']); "
        "print(keys, fn['Environment']['Variables']['BACKEND'])"
    )
    found = subprocess.run(
        [sys.executable, "-c", script],
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path(state).parent), **variables},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert found.stdout.split() == [str(2 * IMAGES), "sagemaker"]  # each image and its result
