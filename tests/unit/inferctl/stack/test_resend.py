"""``reprocess`` on a deployed stack hands its list to the re-send state machine: the list lands in the analytics
bucket as CSV under ``resend/`` (the only prefix the machine may read), one execution starts with where it is, and
each batch the machine sends is a message the function parses as the image it names (the machine's JSONata run by
jsonata-python on what the Distributed Map's CSV reader hands a child). The calls stay within iam/operator-rerun.json.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import jsonata
from moto import mock_aws

from inferctl.stack import listing, resend
from inferctl.stack.target import Target
from lambdas.contract import events
from stacks import outcome_definitions

ROOT = Path(__file__).resolve().parents[4]
KEYS = ["test_images/a b+c.jpg", "test_images/über/%41.png", "test_images/plain.jpg"]


def entries(items: list[dict[str, str]], bucket: str, run: str) -> list[dict[str, Any]]:
    """What one child of the Distributed Map sends: RESEND_ENTRIES evaluated as Step Functions evaluates it."""
    expression = outcome_definitions.RESEND_ENTRIES.removeprefix("{%").removesuffix("%}")
    states = {"input": {"Items": items, "BatchInput": {"bucket": bucket, "run": run}}}
    result = jsonata.Jsonata(expression).evaluate(None, {"states": states})
    assert isinstance(result, list)
    return result


def objects(body: str) -> list[events.ObjectCreated]:
    """The objects of a message body the function parses (not S3's test event)."""
    parsed = events.parse_body(body)
    assert isinstance(parsed, list)
    return parsed


def test_each_entry_is_the_s3_event_the_function_parses_for_its_image():
    items = [{"key": key, "size": str(100 + n), "etag": f"etag{n}"} for n, key in enumerate(KEYS)]

    sent = entries(items, "images", "reprocess-1")

    assert [entry["Id"] for entry in sent] == ["0", "1", "2"]  # unique within the SendMessageBatch
    parsed = [objects(entry["MessageBody"]) for entry in sent]
    refs = [created.ref for (created,) in parsed]
    assert [(r.bucket, r.key, r.size, r.etag, r.rerun) for r in refs] == [
        ("images", key, 100 + n, f"etag{n}", "reprocess-1") for n, key in enumerate(KEYS)
    ]
    assert all(created.event_name == "ObjectCreated:PutObject" for (created,) in parsed)


def test_images_without_an_outcome_are_sent_without_a_run():
    (entry,) = entries([{"key": KEYS[0], "size": "7", "etag": "e"}], "images", "")
    (created,) = objects(entry["MessageBody"])
    assert (created.ref.key, created.ref.rerun) == (KEYS[0], None)  # not forced: a current result is kept


@mock_aws
def test_the_list_lands_under_resend_and_one_execution_starts_on_it():
    session = boto3.Session(region_name="us-east-1")
    s3, sfn = session.client("s3"), session.client("stepfunctions")
    s3.create_bucket(Bucket="analytics")
    role = "arn:aws:iam::123456789012:role/resend"
    definition = json.dumps(
        outcome_definitions.resend_definition("https://sqs.us-east-1.amazonaws.com/123456789012/q", 4)
    )
    machine = sfn.create_state_machine(name="resend", definition=definition, roleArn=role)["stateMachineArn"]
    target = Target(
        session, "images", "test_images/", "q", "dlq", None,
        outputs={"ResendStateMachineArn": machine, "AnalyticsBucketName": "analytics"},
    )  # fmt: skip
    operations: set[str] = set()
    session.events.register("before-call", lambda model, **_: operations.add(_action(model)))
    now = datetime.now(UTC)
    chosen = [(listing.Entry(key, f"etag{n}", 100 + n, now, None), "missing") for n, key in enumerate(KEYS)]

    sent = resend.by_state_machine(target, chosen, None)

    assert sent.report.selected == sent.report.enqueued == 3
    assert sent.report.by_reason == {"missing": 3}
    assert sent.list_uri is not None
    assert sent.list_uri.startswith("s3://analytics/" + outcome_definitions.RESEND_PREFIX)
    key = sent.list_uri.removeprefix("s3://analytics/")
    listed = list(csv.DictReader(io.StringIO(s3.get_object(Bucket="analytics", Key=key)["Body"].read().decode())))
    assert listed == [{"key": k, "size": str(100 + n), "etag": f"etag{n}"} for n, k in enumerate(KEYS)]
    execution = sfn.describe_execution(executionArn=sent.execution_arn)
    assert json.loads(execution["input"]) == {"listBucket": "analytics", "listKey": key, "bucket": "images", "run": ""}
    assert resend.RESEND_PREFIX == outcome_definitions.RESEND_PREFIX
    allowed = _policy("operator-rerun.json")
    assert operations
    assert operations <= allowed, sorted(operations - allowed)


@mock_aws
def test_a_dry_run_writes_and_starts_nothing():
    session = boto3.Session(region_name="us-east-1")
    session.client("s3").create_bucket(Bucket="analytics")
    target = Target(
        session, "images", "test_images/", "q", "dlq", None,
        outputs={"ResendStateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:x",
                 "AnalyticsBucketName": "analytics"},
    )  # fmt: skip
    now = datetime.now(UTC)
    sent = resend.by_state_machine(target, [(listing.Entry(KEYS[0], "e", 1, now, None), "missing")], None, dry_run=True)
    assert (sent.report.selected, sent.report.enqueued, sent.execution_arn) == (1, 0, None)
    assert "Contents" not in session.client("s3").list_objects_v2(Bucket="analytics")


def _action(model: Any) -> str:
    prefix = {"stepfunctions": "states"}.get(model.service_model.service_name, model.service_model.service_name)
    return f"{prefix}:{model.name}"


def _policy(name: str) -> set[str]:
    document = json.loads((ROOT / "iam" / name).read_text(encoding="utf-8"))
    return {action for statement in document["Statement"] for action in statement["Action"]}
