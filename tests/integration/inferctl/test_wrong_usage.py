"""Every mistake a user can make with the operator tool ends in one line that says what is wrong and what to do,
with exit 2 for usage and configuration (1 for an operation that did not succeed), and never a traceback.

A table of wrong usages runs against a live embedded stack, in-process (``inferctl.cli.main``, as the console
script calls it); a few run as real processes too, where the process is the point (a closed pipe, the exit
status a shell sees). The crashes reported against earlier versions have their own regression tests below.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
    TokenRetrievalError,
)
from PIL import Image

from inferctl.cli import main
from inferctl.cli.exits import explain
from inferctl.emulator.models.base import LocalLifecycle
from inferctl.emulator.stack import EmbeddedStack, embedded_stack, write_state
from inferctl.scenarios.demo.run import demo_config, demo_models
from inferctl.stack import uploads
from inferctl.stack.annotate import annotate
from inferctl.stack.target import embedded
from tests.support.paths import ROOT

USAGE, FAILED = 2, 1
UNSET = None  # an environment variable the row removes


@dataclass(frozen=True)
class Wrong:
    """A wrong usage: the command line (``{state}``: the embedded stack's state file; ``{here}``: a folder of
    test files), the exit code, and a phrase of the message that names what to do."""

    why: str
    argv: str
    code: int
    fix: str
    env: dict[str, str | None] = field(default_factory=dict)


NO_REGION = {"AWS_REGION": UNSET, "AWS_DEFAULT_REGION": UNSET, "AWS_CONFIG_FILE": "{here}/empty.cfg"}
NO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": UNSET,
    "AWS_SECRET_ACCESS_KEY": UNSET,
    "AWS_SESSION_TOKEN": UNSET,
    "AWS_CONFIG_FILE": "{here}/empty.cfg",
    "AWS_SHARED_CREDENTIALS_FILE": "{here}/empty.cfg",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": UNSET,
}
# The embedded stack points this process's AWS clients at it (AWS_ENDPOINT_URL_<SERVICE>): CloudFormation too.
AT_THE_EMULATOR = {
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": UNSET,
    "AWS_ENDPOINT_URL_CLOUDFORMATION": "{endpoint}",
}

ROWS = [
    # which stack
    Wrong("no command", "", USAGE, "--help"),
    Wrong("unknown command", "nosuch", USAGE, "choose from"),
    Wrong("no target", "audit", USAGE, "one of the arguments --stack --embedded is required"),
    Wrong("both targets", "audit --stack S --embedded {state}", USAGE, "not allowed with"),
    Wrong("embedded not running", "audit --embedded {here}/none.json", USAGE, "inferctl serve"),
    Wrong("embedded given a folder", "audit --embedded {here}", USAGE, "state file (a .json"),
    Wrong("region with embedded", "audit --embedded {state} --region eu-west-1", USAGE, "not --embedded"),
    Wrong("stack with no region", "audit --stack ImageInference", USAGE, "set AWS_REGION", NO_REGION),
    Wrong(
        "AWS_REGION alone, no such stack",
        "audit --stack NoSuchStack",
        USAGE,
        "no such stack in eu-west-1",
        AT_THE_EMULATOR,
    ),
    Wrong("unknown profile", "audit --stack ImageInference --profile nosuch", USAGE, "check AWS_PROFILE"),
    Wrong("no credentials", "audit --stack ImageInference --region eu-west-1", USAGE, "aws sso login", NO_CREDENTIALS),
    Wrong(
        "unreachable endpoint",
        "audit --stack ImageInference",
        USAGE,
        "AWS_ENDPOINT_URL",
        {**AT_THE_EMULATOR, "AWS_ENDPOINT_URL_CLOUDFORMATION": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"},
    ),
    # upload
    Wrong("folder taken as the state file", "upload --embedded {here}/images", USAGE, "put PATH first"),
    Wrong("state file not a .json", "upload {here}/images --embedded {here}/images", USAGE, "state file"),
    Wrong("no such folder", "upload {here}/nope --embedded {state}", USAGE, "no such file or folder"),
    Wrong("empty folder", "upload {here}/empty --embedded {state}", USAGE, "files ending in .jpg"),
    Wrong("not an image", "upload {here}/notes.txt --embedded {state}", USAGE, "is not an image"),
    Wrong("negative timeout", "upload {here}/one.jpg --embedded {state} --wait --timeout -5", USAGE, "not above 0"),
    # results, dlq, audit
    Wrong("download onto a file", "results --embedded {state} --download {here}/notes.txt", USAGE, "name a folder"),
    Wrong("unknown format", "results --embedded {state} --format xml", USAGE, "invalid choice"),
    Wrong(
        "audit output in a missing folder", "audit --embedded {state} --output {here}/nope/a.csv", USAGE, "no such file"
    ),
    Wrong("dlq unknown format", "dlq --embedded {state} --format csv", USAGE, "invalid choice"),
    # evaluate
    Wrong("no manifest", "evaluate --ground-truth {here}/nope.manifest --embedded {state}", USAGE, "no such file"),
    Wrong(
        "manifest not JSON",
        "evaluate --ground-truth {here}/bad.manifest --embedded {state}",
        USAGE,
        "one JSON object per line",
    ),
    Wrong(
        "manifest without source-ref",
        "evaluate --ground-truth {here}/nosource.manifest --embedded {state}",
        USAGE,
        "has no source-ref",
    ),
    Wrong("manifest is binary", "evaluate --ground-truth {here}/one.jpg --embedded {state}", USAGE, "not a text file"),
    Wrong(
        "manifest box without numbers",
        "evaluate --ground-truth {here}/nobox.manifest --embedded {state}",
        USAGE,
        "lacks a number for left",
    ),
    Wrong(
        "precision as a percentage",
        "evaluate --ground-truth {here}/truth.manifest --min-precision 95 --embedded {state}",
        USAGE,
        "95% is 0.95",
    ),
    Wrong(
        "IoU above 1", "evaluate --ground-truth {here}/truth.manifest --iou 2 --embedded {state}", USAGE, "at most 1"
    ),
    Wrong("IoU of 0", "evaluate --ground-truth {here}/truth.manifest --iou 0 --embedded {state}", USAGE, "above 0"),
    Wrong(
        "nothing to evaluate",
        "evaluate --ground-truth {here}/truth.manifest --embedded {state}",
        FAILED,
        "upload the images",
    ),
    # review, evaluate --reviewed, drift
    Wrong("review of no images", "review --budget 0 --embedded {state}", USAGE, "not 1 or more"),
    Wrong(
        "review with nothing to review",
        "review --session {here}/session.json --embedded {state}",
        FAILED,
        "upload images first",
    ),
    Wrong(
        "a labelling job's manifest as reviewed",
        "evaluate --reviewed {here}/truth.manifest --embedded {state}",
        USAGE,
        "evaluate it with --ground-truth",
    ),
    Wrong("drift over no days", "drift --days 0 --embedded {state}", USAGE, "not above 0"),
    Wrong("drift split not a time", "drift --split yesterday --embedded {state}", USAGE, "is not an ISO time"),
    Wrong("drift with no results", "drift --embedded {state}", FAILED, "both windows need results"),
    # thresholds
    Wrong("nothing to set", "thresholds set --embedded {state}", USAGE, "give --min-confidence"),
    Wrong("label without a value", "thresholds set --label car --embedded {state}", USAGE, "NAME=PERCENT"),
    Wrong("threshold above 100", "thresholds set --min-confidence 150 --embedded {state}", USAGE, "between 0 and 100"),
    Wrong(
        "threshold not a number",
        "thresholds set --min-confidence abc --embedded {state}",
        USAGE,
        "a number from 0 to 100",
    ),
    Wrong("what-if label without a name", "thresholds what-if --label =50 --embedded {state}", USAGE, "NAME=PERCENT"),
    Wrong(
        "a fraction for a percent", "thresholds set --min-confidence 0.7 --embedded {state}", USAGE, "did you mean 70?"
    ),
    Wrong("a label's fraction", "thresholds what-if --label car=0.55 --embedded {state}", USAGE, "did you mean 55?"),
    Wrong("a floor's fraction", "thresholds set --candidate-floor 0.3 --embedded {state}", USAGE, "did you mean 30?"),
    Wrong(
        "embedded run writing the repository's cdk.json",
        "thresholds set --min-confidence 55 --write-context --embedded {state}",
        USAGE,
        "name the file to write",
    ),
    Wrong("no such cdk.json", "thresholds show --cdk-json {here}/nope.json --embedded {state}", USAGE, "no such file"),
    # reprocess
    Wrong("no selection", "reprocess --embedded {state}", USAGE, "one of the arguments --missing"),
    Wrong("code without errors", "reprocess --missing --code X --embedded {state}", USAGE, "use it with --errors"),
    Wrong("rate of 0", "reprocess --missing --rate 0 --embedded {state}", USAGE, "not above 0"),
    Wrong(
        "resume without a run",
        "reprocess --missing --resume --state {here}/none.json --embedded {state}",
        USAGE,
        "start one without --resume",
    ),
    # model, cost, smoke, challenger
    Wrong("stop a SageMaker endpoint", "model stop --embedded {state}", USAGE, "created and deleted"),
    Wrong("zero units", "model start --units 0 --embedded {state}", USAGE, "not 1 or more"),
    Wrong("cost over no days", "cost --days 0 --embedded {state}", USAGE, "not above 0"),
    Wrong("cost with no units", "cost --units 0 --embedded {state}", USAGE, "not 1 or more"),
    Wrong("smoke with no time", "smoke --timeout 0 --embedded {state}", USAGE, "not above 0"),
    Wrong("promote without a challenger", "challenger promote --embedded {state}", USAGE, "no challenger"),
    # the embedded stack's own commands
    Wrong("unknown backend", "demo -c backend=foo", USAGE, "expected one of rekognition, sagemaker"),
    Wrong("context key typo", "demo -c minConfidenc=80", USAGE, "did you mean minConfidence?"),
    Wrong("context key in the wrong case", "serve -c MinConfidence=80", USAGE, "did you mean minConfidence?"),
    Wrong("context value out of range", "demo -c minConfidence=180", USAGE, "between 0 and 100"),
    Wrong("context without a value", "demo -c minConfidence", USAGE, "expected key=value"),
    Wrong("demo of no images", "demo --images {here}/empty", USAGE, "files ending in .jpg"),
    Wrong("env of a stack not running", "env --embedded {here}/none.json", USAGE, "inferctl serve"),
    Wrong("fault rate above 1", "fault-run --throttle-rate 2", USAGE, "fraction from 0 to 1"),
    Wrong("fault run of no images", "fault-run --images 0", USAGE, "not 1 or more"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    here = tmp_path_factory.mktemp("wrong")
    (here / "images").mkdir()
    Image.new("RGB", (1, 1), (255, 0, 0)).save(here / "images" / "tiny.png")
    (here / "empty").mkdir()
    (here / "empty" / "README").write_text("no images here\n")
    (here / "empty.cfg").write_text("")  # an AWS config file with no profile, no region
    Image.new("RGB", (64, 48), (200, 30, 30)).save(here / "one.jpg")
    (here / "notes.txt").write_text("not an image\n")
    (here / "bad.manifest").write_text("this is not JSON\n")
    (here / "nosource.manifest").write_text('{"label": 1}\n')
    detection: dict[str, Any] = {
        "source-ref": "s3://labelling-bucket/test_images/scene-1.jpg",
        "boxes": {"image_size": [{"width": 10, "height": 10}], "annotations": [{"class_id": 0, "top": 1}]},
        "boxes-metadata": {"class-map": {"0": "sun"}},
    }
    (here / "nobox.manifest").write_text(json.dumps(detection) + "\n")
    complete = {**detection, "boxes": {**detection["boxes"], "annotations": []}}
    (here / "truth.manifest").write_text(json.dumps(complete) + "\n")
    with embedded_stack(demo_config(), demo_models(), log_path=here / "lambda.log", capture_stdout=True) as stack:
        state = here / "embedded.json"
        write_state(stack, state)
        yield {"here": str(here), "state": str(state), "endpoint": stack.emulator.endpoint_url}


def command(row: Wrong, world: dict[str, str]) -> list[str]:
    return [part.format(**world) for part in row.argv.split()]


@pytest.mark.parametrize("row", ROWS, ids=[row.why for row in ROWS])
def test_a_wrong_usage_gets_one_line_naming_the_fix(row: Wrong, world, monkeypatch, capsys):
    for name, value in row.env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value.format(**world))
    try:
        code = main(command(row, world))
    except SystemExit as stop:  # argparse's own usage errors
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    assert code == row.code, (out, err)
    assert "Traceback" not in err + out
    assert err.count("error:") == 1, err
    lines = err.strip().splitlines()  # the error is the last line, whole; argparse's own too (no usage block)
    assert "error:" in lines[-1], err
    assert not any(line.startswith(("usage:", " ")) for line in lines), err
    assert row.fix.lower() in err.lower(), err


def test_a_label_the_model_never_produced_is_named_and_a_value_below_one_can_be_meant(world, capsys):
    # the stand-in's classes (the function's SAGEMAKER_CLASS_NAMES) have no "nosuchlabel" and no "bee"
    assert main(["thresholds", "set", "--label", "nosuchlabel=60", "--dry-run", "--embedded", world["state"]]) == 0
    err = capsys.readouterr().err
    assert "warning: the model never produced nosuchlabel (per the model's class list: " in err
    assert main(["thresholds", "what-if", "--label", "bee=55", "--label", "car=55", "--embedded", world["state"]]) == 0
    err = capsys.readouterr().err
    assert "never produced bee (" in err
    assert "car" not in err.split("never produced", 1)[1].split("(", 1)[0]  # a known label is not named
    argv = ["thresholds", "set", "--min-confidence", "0.7", "--below-one", "--dry-run", "--embedded", world["state"]]
    assert main(argv) == 0
    assert "0.7" in capsys.readouterr().out


def test_the_deploy_warning_names_only_what_differs_from_cdk_json(world, capsys):
    cdk_json = json.loads((ROOT / "cdk.json").read_text())["context"]
    assert main(["thresholds", "set", "--min-confidence", "57", "--embedded", world["state"]]) == 0
    assert "The next `cdk deploy` sets MIN_CONFIDENCE back" in capsys.readouterr().err
    back = str(cdk_json["minConfidence"])
    assert main(["thresholds", "set", "--min-confidence", back, "--embedded", world["state"]]) == 0
    err = capsys.readouterr().err
    assert "cdk.json has the same values" in err
    assert "sets" not in err


def test_ctrl_c_while_waiting_says_the_images_keep_going_and_how_to_check(world, monkeypatch, capsys):
    def interrupted(*_: Any, **__: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("inferctl.stack.uploads.wait_for", interrupted)
    assert main(["upload", f"{world['here']}/one.jpg", "--wait", "--embedded", world["state"]]) == 130
    err = capsys.readouterr().err
    assert "are in the pipeline and keep going" in err
    assert "inferctl audit --embedded" in err


def test_a_leftover_emulator_endpoint_is_named_when_stack_is_asked_and_env_unset_undoes_every_export(
    world, monkeypatch, capsys
):
    from inferctl.cli.env import SET, exports
    from inferctl.stack.target import read_state

    monkeypatch.setenv("AWS_ENDPOINT_URL", world["endpoint"])
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    assert main(["audit", "--stack", "ImageInference"]) != 0
    err = capsys.readouterr().err
    assert f"warning: AWS_ENDPOINT_URL is {world['endpoint']}, an embedded stack's endpoint" in err
    assert 'eval "$(inferctl env --unset)"' in err
    exported = {line.split()[1].split("=")[0] for line in exports(read_state(Path(world["state"]))).splitlines()[1:]}
    assert exported <= set(SET)
    assert main(["env", "--unset"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "unset " + " ".join(SET)


def test_the_table_is_long_enough_to_mean_something():
    assert len(ROWS) >= 40
    assert len({row.why for row in ROWS}) == len(ROWS)


# --- as processes: what a shell sees -----------------------------------------------------------------------------


def inferctl(*args: str, stdin: Any = None, **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferctl", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **options,
    )


def test_as_a_process_usage_errors_exit_2_with_one_line(world):
    found = inferctl("evaluate", "--ground-truth", f"{world['here']}/nope.manifest", "--embedded", world["state"])
    assert found.returncode == USAGE
    assert found.stderr.strip().splitlines() == [f"error: {world['here']}/nope.manifest: no such file or folder"]
    found = inferctl("model", "stop", "--embedded", world["state"], "--debug")  # --debug: the traceback
    assert found.returncode != 0
    assert "Traceback" in found.stderr


def test_output_into_a_closed_pipe_ends_quietly(world):
    """``inferctl results --format jsonl | head -1``: the reader leaves after one line; no BrokenPipeError."""
    target = embedded(Path(world["state"]))
    keys = [u.key for u in uploads.upload_many(target, [(f"pipe/{i}.jpg", jpeg(i)) for i in range(40)], False)]
    assert all(s.settled for s in uploads.wait_for(target, keys, 120, progress=False).values())
    with subprocess.Popen(
        [sys.executable, "-m", "inferctl", "results", "--embedded", world["state"], "--format", "jsonl"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()  # what `head -1` does
        errors = process.stderr.read().decode()
        code = process.wait(timeout=120)
    assert json.loads(first)["status"] == "ok"
    assert "Traceback" not in errors
    assert "BrokenPipeError" not in errors
    assert code == 0


def jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32 + seed, 24), (seed * 5 % 255, 90, 160)).save(buffer, format="JPEG")
    return buffer.getvalue()


# --- the crashes reported, one regression test each ---------------------------------------------------------------


def test_a_1x1_image_is_annotated_not_crashed_on():
    """`make demo IMAGES=dir` with a 1x1 image and `results --download` raised ``x1 must be >= x0``."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    document = {
        "status": "ok",
        "labels": [{"name": "dot", "confidence": 99.0, "bounding_box": {"left": 0, "top": 0, "width": 1, "height": 1}}],
        "image": {"transformations": []},
    }
    drawn = Image.open(io.BytesIO(annotate(buffer.getvalue(), document)))
    assert drawn.size == (1, 1)


def test_results_download_of_a_1x1_image(world, tmp_path, capsys):
    target = embedded(Path(world["state"]))
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1), (0, 255, 0)).save(buffer, format="PNG")
    (upload,) = uploads.upload_many(target, [("tiny/dot.png", buffer.getvalue())], progress=False)
    assert uploads.wait_for(target, [upload.key], 120, progress=False)[upload.key].settled
    code = main(["results", "--embedded", world["state"], "--prefix", "test_images/tiny/", "--download", str(tmp_path)])
    assert code == 0
    assert (tmp_path / "results" / "tiny" / "dot.png.json").exists()
    assert Image.open(tmp_path / "annotated" / "tiny" / "dot.png.png").size == (1, 1)
    assert "Traceback" not in capsys.readouterr().err


def test_an_upload_of_one_file_uploads_that_file(world, capsys):
    code = main(["upload", f"{world['here']}/one.jpg", "--embedded", world["state"], "--wait", "--timeout", "120"])
    out = capsys.readouterr().out
    assert code == 0
    assert "test_images/one.jpg" in out
    assert "1 images: ok=1" in out


@pytest.fixture(scope="module")
def rekognition_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedStack, str]]:
    here = tmp_path_factory.mktemp("rekognition")
    config = demo_config({"backend": "rekognition"})
    lifecycles = {name: LocalLifecycle("STOPPED", start_seconds=3600, stop_seconds=1) for name in demo_models()}
    with embedded_stack(
        config, demo_models(), log_path=here / "lambda.log", capture_stdout=True, lifecycles=lifecycles
    ) as stack:
        state = here / "embedded.json"
        write_state(stack, state)
        yield stack, str(state)


def test_stopping_a_model_that_is_starting_says_to_wait(rekognition_stack, capsys):
    """`inferctl model stop` on the embedded Rekognition stack raised ResourceInUseException."""
    _, state = rekognition_stack
    assert main(["model", "start", "--no-wait", "--embedded", state]) == 0
    capsys.readouterr()
    code = main(["model", "stop", "--embedded", state])
    err = capsys.readouterr().err
    assert code == FAILED
    assert "Traceback" not in err
    assert "can be stopped once it runs" in err


@pytest.mark.parametrize(
    ("failure", "code", "fix"),
    [
        (NoRegionError(), USAGE, "set AWS_REGION"),
        (NoCredentialsError(), USAGE, "aws sso login"),
        (TokenRetrievalError(provider="sso", error_msg="expired"), USAGE, "aws sso login"),
        (ProfileNotFound(profile="ops"), USAGE, "--profile"),
        (EndpointConnectionError(endpoint_url="https://x"), USAGE, "check the network"),
        (
            ClientError({"Error": {"Code": "ExpiredToken", "Message": "The token expired."}}, "DescribeStacks"),
            USAGE,
            "sign in again",
        ),
        (
            ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject"),
            USAGE,
            "operator policies",
        ),
        (ZeroDivisionError("division by zero"), 3, "--debug"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_aws_configuration_failures_are_explained(failure: Exception, code: int, fix: str):
    found, message = explain(failure)
    assert found == code
    assert fix in message
    assert "\n" not in message


# What the tool loads before it knows what to do: an SDK, a SQL engine or Pillow there made `inferctl --help` and
# every usage error take a third of a second (boto3 alone 200 ms); each is imported where it is used.
NOT_FOR_HELP = ("boto3", "botocore.session", "sqlglot", "duckdb", "PIL.Image", "http.server", "numpy")


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["results", "--help"], ["query", "--help"], ["no-such-command"], ["audit", "--format", "yaml"]],
    ids=["help", "command-help", "query-help", "unknown-command", "bad-choice"],
)
def test_help_and_usage_errors_load_no_sdk_engine_or_imaging_library(argv: list[str]) -> None:
    program = (
        "import sys\n"
        "from inferctl.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('LOADED:' + ','.join(name for name in {NOT_FOR_HELP!r} if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=120)
    loaded = [line for line in done.stdout.splitlines() if line.startswith("LOADED:")]
    assert loaded == ["LOADED:"], (loaded, done.stderr[-2000:])
