"""AWS-authored events and responses (tests/fixtures, sources in its README)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@cache
def _load(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


def load(relative: str) -> Any:
    """A fresh copy of a fixture (tests may change it)."""
    return copy.deepcopy(_load(relative))


def s3_event(*, bucket: str, key: str, **object_fields: Any) -> dict[str, Any]:
    """The S3 User Guide's ObjectCreated:Put message for ``bucket``/``key`` (key URL-encoded as S3 sends it),
    with object fields (``versionId``, ``sequencer``, ``eTag``, ``size``) replaced or removed (value None)."""
    from urllib.parse import quote_plus

    event = load("events/s3_put_versioned_user_guide.json")
    record = event["Records"][0]
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    obj = record["s3"]["object"]
    obj["key"] = quote_plus(key, safe="/")
    for name, value in object_fields.items():
        if value is None:
            obj.pop(name, None)
        else:
            obj[name] = value
    return dict(event)


def sqs_envelope(*bodies: str, receive_count: int = 1) -> dict[str, Any]:
    """Lambda's SQS event from the Lambda docs, one record per body (message ids made unique)."""
    template = load("events/sqs_event_lambda_docs.json")["Records"][0]
    records = []
    for index, body in enumerate(bodies):
        record = copy.deepcopy(template)
        record["messageId"] = f"{template['messageId'][:-4]}{index:04d}"
        record["receiptHandle"] = f"{template['receiptHandle']}{index}"
        record["body"] = body
        record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
        records.append(record)
    return {"Records": records}
