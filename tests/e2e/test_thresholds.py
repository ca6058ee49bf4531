"""Thresholds changed safely on the running (embedded) function, and what-if against a real re-run.

The embedded stack's Lambda control plane answers GetFunctionConfiguration / UpdateFunctionConfiguration
like Lambda (RevisionId, LastUpdateStatus); a changed configuration starts new execution environments."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferctl import cli
from inferctl.emulator.stack import EmbeddedStack, embedded_stack, write_state
from inferctl.evaluation import whatif
from inferctl.samples import demo_samples
from inferctl.scenarios.demo.run import demo_config, demo_models
from inferctl.stack import configuration, uploads
from inferctl.stack.target import Target, from_outputs
from lambdas.contract.rules import ConfigError
from lambdas.contract.thresholds import Thresholds


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedStack, Target, Path]]:
    folder = tmp_path_factory.mktemp("thresholds")
    config = demo_config({"lambdaTimeoutSeconds": 5})
    with embedded_stack(config, demo_models(), log_path=folder / "lambda.log", containers=1) as stack:
        write_state(stack, folder / "embedded.json")
        yield stack, from_outputs(stack.session, stack.state(), None, "embedded"), folder


def upload_scenes(target: Target, trailer: bytes = b"") -> dict[str, Any]:
    """The demo's scenes; ``trailer`` after the image data changes the bytes (a new ETag: new work even where
    moto's notifications carry no version), not the pixels the model sees."""
    items = [(sample.key, sample.data + trailer) for sample in demo_samples() if "broken" not in sample.key]
    sent = uploads.upload_many(target, items, progress=False)
    versions = {u.key: u.version_id for u in sent}
    found = uploads.wait_for(target, list(versions), timeout=60, progress=False, versions=versions)
    return {key: state.document for key, state in found.items()}


def test_a_change_is_merged_and_survives_a_concurrent_change_to_another_variable(running, monkeypatch):
    _, target, _ = running
    before = configuration.read_live(target).environment
    reads = {"count": 0}
    real_read = configuration.read_live

    def read_then_someone_else_writes(t: Target) -> configuration.Live:
        live = real_read(t)
        reads["count"] += 1
        if reads["count"] == 1:  # between our read and our write, another operator changes another variable
            other = {**live.environment, "RECORD_CONCURRENCY": "7"}
            t.client("lambda").update_function_configuration(
                FunctionName=t.function_name, Environment={"Variables": other}
            )
        return live

    monkeypatch.setattr(configuration, "read_live", read_then_someone_else_writes)
    applied = configuration.apply(target, {"min_confidence": "65"})

    after = real_read(target).environment
    assert applied.changes == {"MIN_CONFIDENCE": (before["MIN_CONFIDENCE"], "65")}
    assert after["MIN_CONFIDENCE"] == "65"
    assert after["RECORD_CONCURRENCY"] == "7"  # the other change was not lost
    assert {k: v for k, v in after.items() if k not in ("MIN_CONFIDENCE", "RECORD_CONCURRENCY")} == {
        k: v for k, v in before.items() if k not in ("MIN_CONFIDENCE", "RECORD_CONCURRENCY")
    }
    assert real_read(target).last_update_status == "Successful"  # apply waited until it was active


def test_a_concurrent_change_to_the_same_variable_is_refused(running, monkeypatch):
    _, target, _ = running
    real_read = configuration.read_live
    calls = {"count": 0}

    def read_then_same_variable(t: Target) -> configuration.Live:
        live = real_read(t)
        calls["count"] += 1
        if calls["count"] == 1:
            other = {**live.environment, "MIN_CONFIDENCE": "12"}
            t.client("lambda").update_function_configuration(
                FunctionName=t.function_name, Environment={"Variables": other}
            )
        return live

    monkeypatch.setattr(configuration, "read_live", read_then_same_variable)
    with pytest.raises(configuration.ConcurrentChange, match="MIN_CONFIDENCE"):
        configuration.apply(target, {"min_confidence": "70"})
    assert real_read(target).environment["MIN_CONFIDENCE"] == "12"  # theirs stands


def test_a_bad_value_is_refused_before_anything_is_sent_naming_the_variable(running, capsys):
    stack, _, folder = running
    revision = stack.function.revision
    code = cli.main(["thresholds", "set", "--min-confidence", "101", "--embedded", str(folder / "embedded.json")])
    assert code == 2
    assert "MIN_CONFIDENCE: must be between 0 and 100" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"LABEL_THRESHOLDS\['cat'\]"):
        configuration.planned({}, {"label_thresholds": {"cat": "-4"}})
    assert stack.function.revision == revision


def test_set_prints_the_diff_and_warns_that_the_next_deploy_reverts_it(running, capsys, tmp_path):
    _, _, folder = running
    state = str(folder / "embedded.json")
    assert cli.main(["thresholds", "set", "--label", "sun=90", "--dry-run", "--embedded", state]) == 0
    out = capsys.readouterr()
    assert "LABEL_THRESHOLDS" in out.out
    assert "dry run" in out.err

    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"minConfidence": 50, "labelThresholds": {"tree": 80}}}))
    args = ["thresholds", "set", "--label", "sun=90", "--write-context", str(cdk_json), "--embedded", state]
    assert cli.main(args) == 0
    assert json.loads(cdk_json.read_text())["context"]["labelThresholds"] == {"sun": 90.0, "tree": 80.0}

    assert cli.main(["thresholds", "show", "--cdk-json", str(cdk_json), "--embedded", state]) == 0
    shown = capsys.readouterr().out
    assert "LABEL_THRESHOLDS" in shown
    assert "changed on the function since the deploy" in " ".join(shown.split())  # wrapped, never cut

    assert cli.main(["thresholds", "show", "--cdk-json", str(cdk_json), "--format", "json", "--embedded", state]) == 0
    rows = {row["variable"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["LABEL_THRESHOLDS"]["changed_since_deploy"] is True
    assert json.loads(rows["LABEL_THRESHOLDS"]["cdk_json"]) == {"sun": 90.0, "tree": 80.0}


def test_what_if_matches_a_real_rerun_at_the_proposed_thresholds_image_for_image(running):
    _, target, _ = running
    configuration.apply(target, {"min_confidence": "50", "label_thresholds": {"sun": None}})
    first = upload_scenes(target)
    proposed = Thresholds(75.0, {"tree": 55.0, "house": 90.0}, candidate_floor=10.0)

    predicted = {key: [label["name"] for label in whatif.kept(doc, proposed)] for key, doc in first.items()}
    report = whatif.what_if(first.values(), proposed)
    configuration.apply(target, {"min_confidence": "75", "label_thresholds": {"tree": "55", "house": "90"}})
    rerun = upload_scenes(target, trailer=b"\x00rerun")  # the same pixels again; the model is deterministic

    actual = {key: [label["name"] for label in doc["labels"]] for key, doc in rerun.items()}
    assert actual == predicted
    assert report.changes  # the proposal really changes something
    assert all(doc["thresholds"]["min_confidence"] == 75.0 for doc in rerun.values())  # new environments


def test_evaluate_on_the_command_line_reports_and_applies_the_recommendations(running, tmp_path, capsys):
    from inferctl.evaluation import groundtruth

    _, target, folder = running
    configuration.apply(target, {"min_confidence": "50", "label_thresholds": {"tree": None, "house": None}})
    upload_scenes(target, trailer=b"\x00evaluate")
    manifest = tmp_path / "truth.manifest"
    manifest.write_text(
        "\n".join(
            groundtruth.detection_manifest_line(
                target.bucket, target.input_prefix + sample.key, sample.size, list(sample.objects)
            )
            for sample in demo_samples()
            if sample.objects
        )
    )
    state = str(folder / "embedded.json")
    args = ["evaluate", "--ground-truth", str(manifest), "--report", str(tmp_path / "r.html")]
    args += ["--json", str(tmp_path / "e.json"), "--apply", "--embedded", state]

    # the scenes hold fewer than MIN_POSITIVES of each label: --apply holds every one back and says why
    before = configuration.read_live(target).environment.get("LABEL_THRESHOLDS")
    assert cli.main(args) == 0
    held = capsys.readouterr().err
    assert "not applied: " in held
    assert "fewer than 10 positives" in held
    assert configuration.read_live(target).environment.get("LABEL_THRESHOLDS") == before

    assert cli.main([*args, "--force"]) == 0  # asked for: applied anyway
    numbers = json.loads((tmp_path / "e.json").read_text())
    assert numbers["recommended_thresholds"]
    applied = json.loads(configuration.read_live(target).environment["LABEL_THRESHOLDS"])
    assert applied == pytest.approx(numbers["recommended_thresholds"])
    assert (tmp_path / "r.html").read_text().startswith("<!doctype html>")
    assert "recommended" in capsys.readouterr().out
