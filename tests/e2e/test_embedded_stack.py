"""End to end on the embedded stack: moto's server on 127.0.0.1, the real handler on the local SQS
trigger, the real SageMaker adapter talking to a local model endpoint. Then the CLI against it."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferctl import cli
from inferctl.emulator.models import stand_in
from inferctl.emulator.stack import EmbeddedStack, embedded_stack, write_state
from inferctl.scenarios.demo.run import demo_config
from inferctl.stack import uploads
from inferctl.stack.outcomes import ImageState
from inferctl.stack.target import from_outputs
from tests.support import pictures
from tests.support.logs import first_request_id, rows_refused, settled_results

FAIL_ONCE = pictures.jpeg(330, 240)
FAIL_ALWAYS = pictures.jpeg(340, 240)
GOOD = {
    "red flower.jpg": pictures.jpeg(320, 240),
    "ünïcødé/猫 の写真.JPG": pictures.jpeg(300, 200),
    "a+b=c 100%.png": pictures.png(200, 200),
    "fail-once.jpg": FAIL_ONCE,
    "fail-always.jpg": FAIL_ALWAYS,
    "notes-not-an-image.jpg": b"just some text, not pixels\n",
    "animated.gif": pictures.animated_gif(),
}


class FlakyModel:
    """The demo model, except that one image fails once and another always (HTTP 500 from the container)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, body: bytes, content_type: str) -> Any:
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            self.calls[digest] = self.calls.get(digest, 0) + 1
            count = self.calls[digest]
        if body == FAIL_ALWAYS or (body == FAIL_ONCE and count == 1):
            raise RuntimeError("GPU fell off the bus")
        return stand_in.detect(body, content_type)

    def count(self, data: bytes) -> int:
        return self.calls.get(hashlib.sha256(data).hexdigest(), 0)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedStack, FlakyModel, Path]]:
    model = FlakyModel()
    # A failed record comes back after a second (retryDelayMaxSeconds); two receives before the DLQ. A 30 s function
    # gives each model call a 5 s read: the seven images queue for one container, and on a busy machine a 10 s
    # function's 1 s read timed a healthy image out (a third failure in the first batch).
    config = demo_config({"lambdaTimeoutSeconds": 30, "maxReceiveCount": 2, "batchSize": 10, "retryDelayMaxSeconds": 1})
    folder = tmp_path_factory.mktemp("embedded")
    with embedded_stack(
        config, {"stand-in-shapes": model}, log_path=folder / "lambda.log", start_trigger=False, containers=1
    ) as stack:
        write_state(stack, folder / "embedded.json")
        # Everything is queued before the trigger starts, so the first batch holds every notification.
        target = from_outputs(stack.session, stack.state(), None, "embedded")
        uploads.upload_many(target, list(GOOD.items()), progress=False)
        # The bucket's events reach the queue through the emulated EventBridge a moment after each upload: wait for
        # all of them (a condition, not a time), so that the first batch holds every notification on a busy machine.
        sqs = stack.client("sqs")

        def queued() -> int:
            attributes = sqs.get_queue_attributes(
                QueueUrl=stack.resources.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            return int(attributes["ApproximateNumberOfMessages"])

        waited = threading.Event()
        for _ in range(600):
            if queued() >= len(GOOD):
                break
            waited.wait(0.05)
        assert queued() == len(GOOD), "not every upload's notification reached the queue"
        threads, stop = stack.trigger.start()
        try:
            yield stack, model, folder
        finally:
            stop.set()
            for thread in threads:
                thread.join()


@pytest.fixture(scope="module")
def settled(running: tuple[EmbeddedStack, FlakyModel, Path]) -> dict[str, ImageState]:
    stack, _, _ = running
    target = from_outputs(stack.session, stack.state(), None, "embedded")
    keys = [stack.config.input_prefix + name for name in GOOD]
    return uploads.wait_for(target, keys, timeout=60, progress=False)


def test_every_image_has_exactly_one_outcome(running, settled):
    prefix = running[0].config.input_prefix
    states = {key[len(prefix) :]: outcome.state for key, outcome in settled.items()}
    assert states == {
        "red flower.jpg": "ok",
        "ünïcødé/猫 の写真.JPG": "ok",
        "a+b=c 100%.png": "ok",
        "fail-once.jpg": "ok",
        "fail-always.jpg": "dead_letter",
        "notes-not-an-image.jpg": "error",
        "animated.gif": "ok",
    }


def test_results_are_checked_in_s3_one_by_one(running, settled):
    stack = running[0]
    s3 = stack.client("s3")
    for key, outcome in settled.items():
        listed = s3.list_objects_v2(Bucket=stack.resources.bucket, Prefix=key + ".json").get("Contents", [])
        if outcome.state == "dead_letter":
            assert listed == []  # no half-written result for an image still owed one
            continue
        assert [item["Key"] for item in listed] == [key + ".json"]
        document = json.loads(s3.get_object(Bucket=stack.resources.bucket, Key=key + ".json")["Body"].read())
        assert document["source"]["key"] == key
        assert document["model"]["model_id"] == "stand-in-shapes"
    error = settled[stack.config.input_prefix + "notes-not-an-image.jpg"].document
    assert error is not None
    assert error["error"]["code"] == "IMAGE_UNREADABLE"
    gif = settled[stack.config.input_prefix + "animated.gif"].document
    assert gif is not None
    assert "first_frame_of_3" in gif["image"]["transformations"]


def test_a_failing_record_does_not_hold_back_the_others(running, settled):
    stack, model, folder = running
    first_batch = stack.reports[0]
    assert first_batch.received == len(GOOD)  # one message per image, no S3 test event (EventBridge sends none)
    # fail-once and fail-always; and on a busy machine any record whose row the emulated stream took too long to
    # take (retried by design; the result stands and its redelivery sends only the row)
    first = first_request_id(folder / "lambda.log")
    assert first is not None
    late_rows = len(rows_refused(folder / "lambda.log").get(first, set()))
    assert first_batch.failed == 2 + late_rows
    assert first_batch.succeeded == first_batch.received - first_batch.failed
    prefix = stack.config.input_prefix
    written = settled_results(folder / "lambda.log", 0, [prefix + "red flower.jpg", prefix + "fail-once.jpg"])
    assert written[prefix + "red flower.jpg"] == 1  # deleted after its first success: never redelivered
    assert written[prefix + "fail-once.jpg"] == 1  # redelivered once, then succeeded
    assert written[prefix + "fail-always.jpg"] == 0
    # The model saw each at least that often (more when botocore retried a call that timed out on a busy machine)
    assert model.count(FAIL_ONCE) >= 2
    assert model.count(FAIL_ALWAYS) >= 2  # maxReceiveCount receives, then the DLQ


def test_results_start_no_new_work(running, settled):
    stack = running[0]
    # One message per image, no more: the result documents (.json) match no image suffix of the EventBridge rule,
    # so they send nothing. Fail-once and fail-always were received twice (more records may have been, when the
    # emulated stream was late on a busy machine).
    counts = stack.trigger.stats.receive_counts
    assert len(counts) == len(GOOD)
    assert sum(1 for received in counts.values() if received >= 2) >= 2
    s3 = stack.client("s3")
    listed = s3.list_objects_v2(Bucket=stack.resources.bucket, Prefix=stack.config.input_prefix)["Contents"]
    assert not [item["Key"] for item in listed if item["Key"].endswith(".json.json")]  # no result of a result
    sqs = stack.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=stack.resources.queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_cli_results_lists_every_result_as_json_lines(running, settled, capsys):
    _, _, folder = running
    assert cli.main(["results", "--embedded", str(folder / "embedded.json"), "--format", "jsonl"]) == 0
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(d["source"]["key"] for d in documents) == sorted(k for k, o in settled.items() if o.document)


def test_cli_results_downloads_json_and_annotated_images(running, settled, tmp_path):
    _, _, folder = running
    assert cli.main(["results", "--embedded", str(folder / "embedded.json"), "--download", str(tmp_path)]) == 0
    assert (tmp_path / "results" / "red flower.jpg.json").is_file()
    assert (tmp_path / "annotated" / "red flower.jpg.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "results" / "notes-not-an-image.jpg.json").is_file()
    assert not (tmp_path / "annotated" / "notes-not-an-image.jpg.png").exists()


def test_cli_dlq_shows_the_dead_letter_and_why_then_redrives_it(running, settled, capsys):
    stack, _, folder = running
    state = str(folder / "embedded.json")
    assert cli.main(["dlq", "--embedded", state, "--format", "jsonl"]) == 0
    (letter,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert letter["keys"] == [stack.config.input_prefix + "fail-always.jpg"]
    assert letter["last_error"].startswith("BACKEND_UNAVAILABLE")

    assert cli.main(["dlq", "--embedded", state, "--redrive"]) == 0
    assert "redrove 1 messages" in capsys.readouterr().err
    sqs = stack.client("sqs")
    dlq = sqs.get_queue_attributes(QueueUrl=stack.resources.dead_letter_queue_url, AttributeNames=["All"])
    assert dlq["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_cli_upload_waits_for_outcomes_with_progress(running, tmp_path, capsys):
    _, _, folder = running
    (tmp_path / "holiday").mkdir()
    (tmp_path / "holiday" / "beach day.jpg").write_bytes(pictures.jpeg(400, 300))
    (tmp_path / "holiday" / "notes.txt").write_text("not uploaded")
    code = cli.main(["upload", str(tmp_path), "--embedded", str(folder / "embedded.json"), "--wait", "--timeout", "30"])
    captured = capsys.readouterr()
    assert code == 0
    assert "holiday/beach day.jpg" in captured.out
    assert "ok=1" in captured.out
    assert "skipped" in captured.err
    assert "notes.txt" in captured.err
    assert "results: 1/1" in captured.err  # progress (a line per step when not a terminal)


def test_cli_reports_a_missing_embedded_stack_with_exit_2(tmp_path, capsys):
    assert cli.main(["results", "--embedded", str(tmp_path / "nope.json")]) == 2
    assert "start the embedded stack" in capsys.readouterr().err


def test_cli_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["--help"])
    assert raised.value.code == 0
    help_text = capsys.readouterr().out
    for command in ("demo", "serve", "upload", "results", "dlq"):
        assert command in help_text


def test_cli_finds_a_deployed_stack_by_its_cloudformation_outputs(running, settled, capsys):
    # A "deployed" stack in the emulator's CloudFormation, whose outputs name the embedded resources.
    stack = running[0]
    outputs = {key: value for key, value in stack.state().items() if key[0].isupper()}
    template = {
        "Resources": {"Marker": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    stack.client("cloudformation").create_stack(StackName="ImageInferenceTest", TemplateBody=json.dumps(template))

    assert cli.main(["results", "--stack", "ImageInferenceTest", "--format", "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    # (the function runs in this process: its EMF metric lines share the captured output)
    keys = {line["source"]["key"] for line in lines if "source" in line}
    assert stack.config.input_prefix + "red flower.jpg" in keys

    assert cli.main(["results", "--stack", "NoSuchStack"]) == 2
    assert "cannot describe stack 'NoSuchStack'" in capsys.readouterr().err
