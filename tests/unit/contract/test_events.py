"""Parsing SQS bodies into S3 events, URL-decoding keys, and deciding what is work."""

from __future__ import annotations

import json

import pytest

from lambdas.contract.events import MalformedMessage, ObjectCreated, S3TestEvent, Skip, parse_body, skip_reason
from lambdas.contract.values import ObjectRef
from tests.support.fixtures import load

SUFFIXES = (".jpg", ".jpeg", ".png")


def notification(*keys: str, event_name: str = "ObjectCreated:Put", version: str | None = "v1") -> str:
    records = []
    for key in keys:
        obj = {"key": key, "size": 10, "eTag": "abc"}
        if version:
            obj["versionId"] = version
        records.append(
            {
                "eventSource": "aws:s3",
                "eventName": event_name,
                "eventTime": "2026-01-01T00:00:00.000Z",
                "s3": {"bucket": {"name": "b"}, "object": obj},
            }
        )
    return json.dumps({"Records": records})


def objects(body: str) -> list[ObjectCreated]:
    parsed = parse_body(body)
    assert isinstance(parsed, list)
    return parsed


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("test_images/red+flower.jpg", "test_images/red flower.jpg"),
        ("test_images/a%2Bb.jpg", "test_images/a+b.jpg"),
        ("test_images/100%25.jpg", "test_images/100%.jpg"),
        ("test_images%2Fsub%2Fx.jpg", "test_images/sub/x.jpg"),
        ("test_images/%E7%8C%AB.jpg", "test_images/猫.jpg"),
    ],
)
def test_keys_are_url_decoded_once(encoded, decoded):
    (event,) = objects(notification(encoded))
    assert event.ref.key == decoded


def test_several_records_in_one_message():
    events = objects(notification("test_images/a.jpg", "test_images/b.jpg"))
    assert [e.ref.key for e in events] == ["test_images/a.jpg", "test_images/b.jpg"]
    assert events[0].ref == ObjectRef(bucket="b", key="test_images/a.jpg", version_id="v1", etag="abc", size=10)


def test_s3_test_event():
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "t", "Bucket": "b", "RequestId": "r"})
    assert parse_body(body) == S3TestEvent(bucket="b")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("not json at all", "not JSON"),
        ("[1, 2]", "JSON list"),
        ('{"hello": "world"}', "no 'Records'"),
        ('{"Records": []}', "no 'Records'"),
        ('{"Records": [{"eventSource": "aws:sns"}]}', "not an S3 event record"),
        ('{"Records": [{"eventSource": "aws:s3", "s3": {}}]}', "lacks s3.bucket.name"),
    ],
)
def test_malformed_bodies_say_what_is_wrong(body, fragment):
    with pytest.raises(MalformedMessage, match=fragment):
        parse_body(body)


def event(key: str, name: str = "ObjectCreated:Put") -> ObjectCreated:
    return ObjectCreated(ref=ObjectRef(bucket="b", key=key), event_name=name)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("test_images/cat.jpg", None),
        ("test_images/CAT.JPG", None),
        ("test_images/cat.Jpeg", None),
        ("other/cat.jpg", Skip.OUTSIDE_PREFIX),
        ("test_images/cat.jpg.json", Skip.RESULT_FILE),
        ("test_images/notes.txt", Skip.UNSUPPORTED_SUFFIX),
        ("test_images/folder/", Skip.FOLDER_MARKER),
    ],
)
def test_skip_reasons(key, reason):
    assert skip_reason(event(key), "test_images/", SUFFIXES) == reason


def test_non_create_events_are_skipped():
    assert skip_reason(event("test_images/a.jpg", "ObjectRemoved:Delete"), "test_images/", SUFFIXES) == (
        Skip.NOT_OBJECT_CREATED
    )


# --- what AWS sends (tests/fixtures) -------------------------------------------------------------------------


def test_the_lambda_consoles_s3_put_event_parses_with_its_encoded_key():

    (event,) = objects(json.dumps(load("events/s3_put_lambda_console.json")))
    assert event.ref == ObjectRef(
        bucket="example-bucket",
        key="test/key",
        version_id=None,
        etag="0123456789abcdef0123456789abcdef",
        size=1024,
        sequencer="0A1B2C3D4E5F678901",
    )
    assert event.event_name == "ObjectCreated:Put"


def test_the_s3_user_guides_versioned_event_keeps_its_version():

    (event,) = objects(json.dumps(load("events/s3_put_versioned_user_guide.json")))
    assert event.ref.version_id == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    assert event.ref.key == "HappyFace.jpg"


def test_the_s3_test_event_from_the_user_guide():

    assert parse_body(json.dumps(load("events/s3_test_event.json"))) == S3TestEvent(bucket="amzn-s3-demo-bucket")


# --- S3 -> EventBridge -> SQS: the stack's route -----------------------------------------------------------


def eventbridge(key: str, **object_fields: object) -> str:
    """The S3 User Guide's "Object Created" EventBridge event with another key (and object fields)."""

    event = load("events/s3_eventbridge_object_created_user_guide.json")
    event["detail"]["object"].update(key=key, **object_fields)
    return json.dumps(event)


def test_the_user_guides_eventbridge_event_becomes_its_object_version():

    (event,) = objects(json.dumps(load("events/s3_eventbridge_object_created_user_guide.json")))
    assert event.ref == ObjectRef(
        bucket="amzn-s3-demo-bucket1",
        key="example-key",
        version_id="IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        etag="b1946ac92492d2347c6235b4d2611184",
        size=5,
        sequencer="617f08299329d189",
    )
    assert event.event_name == "ObjectCreated:PutObject"
    assert skip_reason(event, "", ("-key",)) is None


@pytest.mark.parametrize("key", ["test_images/red flower.jpg", "test_images/a+b%20c.jpg", "test_images/猫.JPG"])
def test_eventbridge_keys_are_taken_as_stored_not_decoded(key):
    # EventBridge carries the key as stored: '+' and '%20' are characters of the name, not encodings.
    (event,) = objects(eventbridge(key))
    assert event.ref.key == key


def test_eventbridge_event_without_an_object_key_is_malformed():
    body = json.loads(eventbridge("x.jpg"))
    del body["detail"]["object"]["key"]
    with pytest.raises(MalformedMessage, match=r"detail\.object\.key"):
        parse_body(json.dumps(body))


def test_another_eventbridge_detail_type_is_skipped_not_processed():
    body = json.loads(eventbridge("test_images/x.jpg"))
    body["detail-type"] = "Object Deleted"
    (event,) = objects(json.dumps(body))
    assert skip_reason(event, "test_images/", SUFFIXES) is Skip.NOT_OBJECT_CREATED


def test_an_unversioned_bucket_event_has_no_version():
    body = json.loads(eventbridge("test_images/x.jpg"))
    del body["detail"]["object"]["version-id"]
    (event,) = objects(json.dumps(body))
    assert (event.ref.version_id, event.ref.etag) == (None, "b1946ac92492d2347c6235b4d2611184")


def test_a_rerun_in_the_eventbridge_shape_is_forced_by_its_run():
    # The stack's re-send state machine writes this shape (keys as stored: nothing to URL-encode in a workflow).
    body = json.loads(eventbridge("test_images/a b+c.jpg"))
    body["detail"]["inferenceRerun"] = {"run": "reprocess-1"}
    (event,) = objects(json.dumps(body))
    assert (event.ref.key, event.ref.rerun) == ("test_images/a b+c.jpg", "reprocess-1")
    body["detail"]["inferenceRerun"] = "reprocess-1"  # not an object: no re-run
    (event,) = objects(json.dumps(body))
    assert event.ref.rerun is None
