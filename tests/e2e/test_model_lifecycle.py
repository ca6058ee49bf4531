"""The model's lifecycle on the embedded stack: images wait while the model is stopped or not configured, the
controller (auto mode) starts the model for them and stops it when idle, and nothing is dead-lettered.

The model controller runs the real ``lambdas/controller/handler.py`` against the emulated Lambda control
plane (event source mapping), SQS, SSM and the emulated Rekognition control plane, whose model goes
STOPPED -> STARTING -> RUNNING -> STOPPING -> STOPPED with delays."""

from __future__ import annotations

import time

from inferctl.emulator.models import stand_in
from inferctl.emulator.models.base import LocalLifecycle
from inferctl.emulator.models.rekognition import STAND_IN_ARN
from inferctl.emulator.stack import embedded_stack
from inferctl.scenarios.burst import small_jpeg
from inferctl.scenarios.demo.run import demo_config, demo_models
from inferctl.stack import uploads
from inferctl.stack.deadletters import dead_letters
from inferctl.stack.target import from_outputs
from lambdas.controller.decide import START, STOP


class CountingModel:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, data: bytes, content_type: str) -> object:
        self.calls += 1
        return stand_in.detect(data, content_type)


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_60_images_uploaded_while_the_model_is_stopped_wait_get_started_for_and_the_idle_model_stops():
    # 6 s of idleness stops the model; 4 inference units (20 calls/s) keep the run short.
    config = demo_config(
        {
            "backend": "rekognition",
            "autoMode": True,
            "modelIdleMinutes": 0.1,
            "inferenceUnits": 4,
            "retryDelayMaxSeconds": 2,
        }
    )
    lifecycle = LocalLifecycle("STOPPED", start_seconds=3.0, stop_seconds=1.0)
    model = CountingModel()
    items = [(f"sleepy/{index:04d}.jpg", small_jpeg(index % 50)) for index in range(60)]
    with embedded_stack(
        config, demo_models(model), lifecycles={STAND_IN_ARN: lifecycle}, controller_seconds=0.5
    ) as stack:
        target = from_outputs(stack.session, stack.state(), None, "embedded")
        # The controller has seen the stopped model and paused the trigger before anything arrives.
        wait_until(lambda: not stack.mapping.enabled, 10, "the trigger to be paused")
        sent = uploads.upload_many(target, items, progress=False)
        found = uploads.wait_for(target, [u.key for u in sent], timeout=300, progress=False, poll_seconds=1)
        letters = dead_letters(stack.client("sqs"), stack.resources.dead_letter_queue_url)
        # Idle for modelIdleMinutes: the controller pauses the trigger and stops the model.
        wait_until(lambda: lifecycle.status == "STOPPED" and lifecycle.stops == 1, 60, "the idle model to stop")
        trigger_enabled_at_end = stack.mapping.enabled
        receive_counts = dict(stack.trigger.stats.receive_counts)
        actions = [decision.action for decision in stack.decisions if decision.action]

    assert {state.state for state in found.values()} == {"ok"}
    assert len(found) == 60
    assert letters == []
    # Every message: the images' notifications, their results' (skipped) and S3's test event. A receive can
    # be spent while the trigger is being paused (a long poll in progress), never more than one.
    assert len(receive_counts) >= 60
    assert max(receive_counts.values()) <= 2, sorted(receive_counts.values())[-5:]
    assert model.calls >= 60
    assert lifecycle.transitions == ["STOPPED", "STARTING", "RUNNING", "STOPPING", "STOPPED"]
    assert actions == [START, STOP]
    assert trigger_enabled_at_end is False  # images arriving now wait for the next start


def test_a_stack_deployed_without_a_model_keeps_images_waiting_until_one_is_set():
    config = demo_config({"backend": "rekognition", "rekognitionModelArn": None, "retryDelayMaxSeconds": 2})
    assert config.function.model_id is None
    model = CountingModel()
    items = [(f"early/{index:03d}.jpg", small_jpeg(index)) for index in range(20)]
    with embedded_stack(config, demo_models(model), controller_seconds=0.5) as stack:
        target = from_outputs(stack.session, stack.state(), None, "embedded")
        assert stack.mapping.enabled is False  # deployed paused, as the CDK stack deploys it
        sent = uploads.upload_many(target, items, progress=False)
        seen = len(stack.decisions)
        deadline = time.monotonic() + 60
        while len(stack.decisions) < seen + 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # three controller runs after the uploads: the model is still not configured
        sqs = stack.client("sqs")
        attributes = sqs.get_queue_attributes(
            QueueUrl=stack.resources.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        assert int(attributes["ApproximateNumberOfMessages"]) == 20  # one per image (EventBridge sends no test event)
        assert stack.trigger.stats.received == 0
        assert stack.decisions
        assert stack.decisions[-1].memory.state == "NOT_CONFIGURED"

        # The operator sets the model on the function (as `cdk deploy -c rekognitionModelArn=...` would).
        lambda_client = stack.session.client("lambda", endpoint_url=stack.services_url)
        environment = lambda_client.get_function_configuration(FunctionName=stack.function.name)["Environment"]
        variables = {**environment["Variables"], "REKOGNITION_MODEL_ARN": STAND_IN_ARN}
        lambda_client.update_function_configuration(
            FunctionName=stack.function.name, Environment={"Variables": variables}
        )
        found = uploads.wait_for(target, [u.key for u in sent], timeout=120, progress=False, poll_seconds=1)
        letters = dead_letters(sqs, stack.resources.dead_letter_queue_url)
        receive_counts = dict(stack.trigger.stats.receive_counts)

    assert {state.state for state in found.values()} == {"ok"}
    assert letters == []
    assert receive_counts  # received once the model was set (none before: checked above)
    assert model.calls >= 20  # each image reached the model (a retried call counts again)


def test_the_model_commands_show_start_and_stop_the_embedded_model(tmp_path, capsys):
    from inferctl.cli import main
    from inferctl.emulator.stack import write_state

    config = demo_config({"backend": "rekognition", "retryDelayMaxSeconds": 2})
    lifecycle = LocalLifecycle("STOPPED", start_seconds=1.0, stop_seconds=0.5)
    state = tmp_path / "embedded.json"
    with embedded_stack(config, demo_models(), lifecycles={STAND_IN_ARN: lifecycle}, controller_seconds=0.3) as stack:
        write_state(stack, state)
        wait_until(lambda: bool(stack.decisions), 10, "the controller's first run")
        assert main(["model", "status", "--embedded", str(state)]) == 0
        stopped = capsys.readouterr().out
        assert main(["model", "start", "--units", "2", "--poll", "0.2", "--embedded", str(state)]) == 0
        started = capsys.readouterr()
        wait_until(lambda: stack.mapping.enabled, 10, "the controller to resume the trigger")
        assert main(["model", "status", "--price", "4", "--embedded", str(state)]) == 0
        running = capsys.readouterr().out
        assert main(["model", "stop", "--embedded", str(state)]) == 0
        stop_output = capsys.readouterr().out
        wait_until(lambda: not stack.mapping.enabled, 10, "the controller to pause the trigger")

    assert "state      STOPPED (STOPPED)" in stopped
    assert "USD 0.00" in stopped
    assert "start requested with 2 inference unit(s)" in started.err
    assert "STARTING (STARTING)" in started.err
    assert "READY (RUNNING)" in started.out
    assert "MinInferenceUnits 2" in running
    assert "since" in running
    assert "cost today USD" in running
    assert "at USD 4" in running
    assert "STOPPING" in stop_output
    assert lifecycle.starts == 1
    assert lifecycle.units == 2


def test_the_demo_shows_an_auto_start(tmp_path, capsys):
    from inferctl.scenarios.demo.run import run_demo

    assert run_demo(None, tmp_path / "demo", {}, timeout=120, auto_start=True) == 0
    err = capsys.readouterr().err
    assert "images wait and the model is stopped: starting it" in err
    assert "STOPPED -> STARTING -> RUNNING -> STOPPING -> STOPPED" in err


def test_serves_model_stops_and_starts_taking_its_emulated_time(tmp_path, capsys):
    """``inferctl serve`` gives its Rekognition model the lifecycle ``served_lifecycles`` returns: ``model stop``
    and ``model start`` work on it (they failed with "changing state already" when it had none)."""
    from inferctl import cli
    from inferctl.emulator.stack import write_state
    from inferctl.scenarios.demo.run import served_lifecycles

    lifecycles = served_lifecycles()
    with embedded_stack(demo_config({"backend": "rekognition"}), demo_models(), lifecycles=lifecycles) as stack:
        write_state(stack, tmp_path / "embedded.json")
        state = str(tmp_path / "embedded.json")
        assert cli.main(["model", "stop", "--embedded", state]) == 0
        wait_until(lambda: lifecycles[STAND_IN_ARN].status == "STOPPED", 10, "the model to stop")
        assert cli.main(["model", "start", "--embedded", state]) == 0
        wait_until(lambda: lifecycles[STAND_IN_ARN].status == "RUNNING", 10, "the model to run again")
        # each transition taken, in its time, as on AWS
        assert lifecycles[STAND_IN_ARN].transitions[-4:] == ["STOPPING", "STOPPED", "STARTING", "RUNNING"]
    assert "changing state" not in capsys.readouterr().err
