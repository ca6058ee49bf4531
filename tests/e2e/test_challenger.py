"""A challenger on the embedded stack: the demo model and a worse copy in shadow on the generated scenes; the
side-by-side evaluation; promotion and retirement through the operator tool, seen in the next results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inferctl.cli import main
from inferctl.emulator.models import stand_in
from inferctl.emulator.stack import embedded_stack, write_state
from inferctl.evaluation.evaluate import evaluate
from inferctl.scenarios.demo.run import CHALLENGER_CONTEXT, CHALLENGER_ENDPOINT, demo_config, demo_models, run_demo
from inferctl.stack import uploads
from inferctl.stack.deadletters import dead_letters
from inferctl.stack.target import from_outputs
from tests.support import pictures


def test_the_demo_compares_the_primary_with_a_worse_challenger(tmp_path: Path, capsys):
    out = tmp_path / "demo"
    assert run_demo(None, out, {}, timeout=120, challenger=True) == 0
    printed = capsys.readouterr().out
    assert "Models compared on the 7 images both answered" in printed
    comparison = json.loads((out / "comparison.json").read_text())
    evaluation = json.loads((out / "evaluation.json").read_text())
    primary, challenger = comparison["models"]
    assert (primary["role"], primary["model_id"]) == ("primary", "stand-in-shapes")
    assert (challenger["role"], challenger["model_id"]) == ("challenger", CHALLENGER_ENDPOINT)
    # Every image with an ok result had the challenger's answer too: the primary's row is the plain evaluation.
    assert comparison["images"] == evaluation["images_evaluated"] == 7
    assert primary["recommended_thresholds"] == evaluation["recommended_thresholds"]
    # Both scored against the same truth: the same positives per label.
    truth = {label["label"]: label["ground_truth"] for label in primary["labels"]}
    assert truth == {label["label"]: label["ground_truth"] for label in challenger["labels"]}
    assert sum(truth.values()) == primary["current"]["tp"] + primary["current"]["fn"]
    assert sum(truth.values()) == challenger["current"]["tp"] + challenger["current"]["fn"]
    # The noisy copy misses a quarter of the detections at 80 % of the score: it must lose.
    assert challenger["current"]["recall"] < primary["current"]["recall"]
    assert challenger["recommended"]["f1"] < primary["recommended"]["f1"]
    assert 0 <= comparison["agreement"] < 1
    assert comparison["disagreements"]
    report = (out / "report.html").read_text()
    assert '"comparison": {' in report


def test_promote_and_retire_through_the_operator_tool_change_the_next_results(tmp_path: Path, capsys):
    config = demo_config(CHALLENGER_CONTEXT)
    served = {**demo_models(), CHALLENGER_ENDPOINT: stand_in.detect_noisy}
    state = tmp_path / "embedded.json"
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"backend": "sagemaker", "sagemakerEndpointName": "stand-in-shapes"}}))
    with embedded_stack(config, served, log_path=tmp_path / "lambda.log") as stack:
        write_state(stack, state)
        target = from_outputs(stack.session, stack.state(), None, "embedded")

        def one(name: str) -> dict[str, Any]:
            [upload] = uploads.upload_many(target, [(name, pictures.jpeg(320, 240))], progress=False)
            found = uploads.wait_for(target, [upload.key], timeout=60, progress=False, poll_seconds=0.5)
            document = found[upload.key].document
            assert document is not None
            return dict(document)

        before = one("before.jpg")
        assert main(["challenger", "promote", "--dry-run", "--embedded", str(state)]) == 0
        dry = capsys.readouterr()
        assert "SAGEMAKER_ENDPOINT_NAME: stand-in-shapes -> stand-in-shapes-noisy" in dry.out
        assert "dry run: nothing sent" in dry.err
        unchanged = one("still-before.jpg")
        assert main(["challenger", "promote", "--write-context", str(cdk_json), "--embedded", str(state)]) == 0
        promoted_output = capsys.readouterr()
        after = one("after.jpg")
        assert main(["challenger", "retire", "--embedded", str(state)]) == 0
        retired = one("retired.jpg")
        letters = dead_letters(stack.client("sqs"), stack.resources.dead_letter_queue_url)

    assert (before["model"]["model_id"], before["challenger"]["model_id"]) == ("stand-in-shapes", CHALLENGER_ENDPOINT)
    assert unchanged["model"]["model_id"] == "stand-in-shapes"
    assert (after["model"]["model_id"], after["challenger"]["model_id"]) == (CHALLENGER_ENDPOINT, "stand-in-shapes")
    assert "inferctl reprocess --stale --embedded" in promoted_output.err
    context = json.loads(cdk_json.read_text())["context"]
    assert context["sagemakerEndpointName"] == CHALLENGER_ENDPOINT
    assert context["challengerSagemakerEndpointName"] == "stand-in-shapes"
    assert retired["model"]["model_id"] == CHALLENGER_ENDPOINT
    assert retired["challenger"] is None
    assert letters == []


def test_the_evaluation_of_the_primary_alone_is_unchanged_by_a_challenger_section():
    # The primary's numbers come from its own labels: a challenger section beside them changes nothing.
    from inferctl.evaluation.groundtruth import GroundTruth, ImageTruth
    from lambdas.contract.thresholds import Thresholds

    truth = GroundTruth("classification", {"k": ImageTruth(classes={"bee"})})
    plain = {"status": "ok", "source": {"key": "k"}, "labels": [{"name": "bee", "confidence": 80.0}]}
    with_shadow = {**plain, "challenger": {"status": "ok", "labels": [{"name": "wasp", "confidence": 99.0}]}}
    thresholds = Thresholds(50.0, {}, 10.0)
    assert evaluate([plain], truth, thresholds).as_dict() == evaluate([with_shadow], truth, thresholds).as_dict()
