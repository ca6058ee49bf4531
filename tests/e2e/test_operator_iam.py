"""Each operator command stays within its IAM policy in ``iam/``: the command runs against the embedded stack
with every AWS call it makes recorded, each call is mapped to the IAM action that authorizes it, and the
actions must all be listed in the command's policy."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from inferctl import cli
from inferctl.cli import common
from inferctl.emulator.models import stand_in
from inferctl.emulator.models.base import LocalModel
from inferctl.emulator.stack import embedded_stack, write_state
from inferctl.scenarios.demo.reviewer import review_all
from inferctl.scenarios.demo.run import demo_config
from inferctl.stack import uploads
from inferctl.stack.review_server import ReviewServer
from inferctl.stack.target import Target, embedded
from tests.support import pictures

ROOT = Path(__file__).resolve().parents[2]

# API operations whose IAM action has another name (the Service Authorization Reference's mapping).
RENAMED = {
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
}


def iam_actions(service: str, operation: str, params: dict[str, Any]) -> set[str]:
    prefix = {"logs": "logs", "lambda": "lambda"}.get(service, service)
    action = RENAMED.get((service, operation), f"{prefix}:{operation}")
    actions = {action}
    versioned = "VersionId" in params or any("VersionId" in o for o in params.get("Delete", {}).get("Objects", []))
    if service == "s3" and versioned and action in ("s3:GetObject", "s3:DeleteObject"):
        actions = {action + "Version"}
    return actions


def allowed(policies: str) -> set[str]:
    """The actions of one policy, or of several named with "+" (a command that needs two kinds of work)."""
    found: set[str] = set()
    for policy in policies.split("+"):
        document = json.loads((ROOT / "iam" / policy).read_text())
        found |= {action for statement in document["Statement"] for action in statement["Action"]}
    return found


COMMANDS = [
    ("operator-read.json", ["results", "--format", "jsonl"]),
    ("operator-read.json", ["audit", "--format", "json"]),
    ("operator-read.json", ["dlq"]),
    ("operator-read.json", ["thresholds", "show"]),
    ("operator-read.json", ["thresholds", "what-if", "--min-confidence", "60"]),
    ("operator-read.json", ["model", "status"]),
    ("operator-read.json", ["cost", "--days", "1"]),
    ("operator-read.json", ["drift", "--split", "{split}"]),
    ("operator-read.json", ["review", "--budget", "2", "--session", "{state_dir}/review/session.json"]),
    (
        "operator-read.json+operator-rerun.json",
        ["review", "--budget", "2", "--session", "{state_dir}/review-upload/session.json", "--upload"],
    ),
    ("operator-query.json", ["query", "--named", "error-codes"]),
    ("operator-read.json+operator-query.json", ["audit", "--engine", "duckdb", "--format", "json"]),
    ("operator-read.json+operator-query.json", ["results", "--engine", "duckdb", "--format", "jsonl"]),
    ("operator-read.json+operator-query.json+operator-rerun.json", ["audit", "--reconcile", "--format", "json"]),
    ("operator-tune.json", ["thresholds", "set", "--min-confidence", "55"]),
    ("operator-rerun.json", ["upload", "{photos}", "--wait", "--timeout", "60"]),
    ("operator-rerun.json", ["reprocess", "--missing", "--state", "{state_dir}/reprocess.json"]),
    ("operator-rerun.json", ["dlq", "--redrive"]),
    ("operator-rerun.json", ["smoke", "--timeout", "60"]),
]


@pytest.fixture(scope="module")
def stack_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("iam")
    models: dict[str, LocalModel] = {"stand-in-shapes": stand_in.detect}
    with embedded_stack(demo_config(), models, log_path=folder / "lambda.log", capture_stdout=True) as stack:
        write_state(stack, folder / "embedded.json")
        photos = folder / "photos"
        photos.mkdir()
        (photos / "one.jpg").write_bytes(pictures.jpeg(320, 240))
        (photos / "two.png").write_bytes(pictures.png(200, 160))
        # results on both sides of a moment, for `drift --split` and `review` to find
        target = embedded(folder / "embedded.json")
        for name, data in (("iam/before.jpg", pictures.jpeg(330, 240)), ("iam/after.jpg", pictures.jpeg(340, 240))):
            (uploaded,) = uploads.upload_many(target, [(name, data)], progress=False)
            assert uploads.wait_for(target, [uploaded.key], timeout=60, progress=False)[uploaded.key].state == "ok"
            if name == "iam/before.jpg":
                (folder / "split").write_text(datetime.now(UTC).isoformat(timespec="milliseconds"))
        yield folder


class ReviewedAtOnce(ReviewServer):
    """The review page's server, reviewed through its own API as soon as it runs (as the demo's scripted reviewer
    does), so that `review` runs to its end here."""

    @contextlib.contextmanager
    def running(self) -> Iterator[ReviewServer]:
        with super().running() as server:
            review_all(f"http://127.0.0.1:{server.port}", server.token, {})
            yield server


@pytest.mark.parametrize(("policy", "command"), COMMANDS, ids=[" ".join(c[:2]) for _, c in COMMANDS])
def test_each_command_uses_only_the_actions_of_its_policy(stack_state, monkeypatch, policy, command):
    calls: list[tuple[str, str, dict[str, Any]]] = []

    def recorded(state_file: Path) -> Target:
        target = embedded(state_file)

        def record(model: Any, params: dict[str, Any], **_: Any) -> None:
            calls.append((model.service_model.service_name, model.name, params))

        target.session.events.register("before-call", record)
        return target

    monkeypatch.setattr(common, "embedded", recorded)
    monkeypatch.setattr("inferctl.stack.review_server.ReviewServer", ReviewedAtOnce)  # what `review` serves with
    split = (stack_state / "split").read_text()
    argv = [word.format(photos=stack_state / "photos", state_dir=stack_state, split=split) for word in command]
    code = cli.main([*argv, "--embedded", str(stack_state / "embedded.json")])

    assert code == 0, argv
    used = set().union(*(iam_actions(service, operation, params) for service, operation, params in calls))
    assert used, "no AWS call was recorded: the test would prove nothing"
    assert used <= allowed(policy), f"{' '.join(argv)} needs {sorted(used - allowed(policy))} beyond {policy}"
