"""The pure parts of reprocess and audit: pairing images with documents in one ordered pass, what each
selection picks, and the notifications ``reprocess`` sends being read by the function as S3's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inferctl.stack import audit, listing, reprocess
from lambdas.contract.events import parse_body

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SUFFIXES = (".jpg", ".png")


class Pages:
    """A ``list_objects_v2`` paginator over given keys, in S3's (UTF-8 byte) order, two keys a page."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = sorted(keys, key=lambda k: k.encode())

    def get_paginator(self, name: str) -> Pages:
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str, StartAfter: str = "") -> Any:
        keys = [k for k in self.keys if k.startswith(Prefix) and k.encode() > StartAfter.encode()]
        for start in range(0, len(keys), 2):
            yield {
                "Contents": [
                    {"Key": k, "ETag": f'"{k}"', "Size": 1, "LastModified": T0} for k in keys[start : start + 2]
                ]
            }


def pairs(keys: list[str], start_after: str = "") -> dict[str, str | None]:
    entries = listing.listing(Pages(keys), "b", "in/", SUFFIXES, start_after)
    return {entry.key: entry.result_key for entry in entries}


def test_pairs_each_image_with_its_own_document_even_when_keys_nest() -> None:
    keys = [
        "in/a.jpg",
        "in/a.jpg-copy.png",  # sorts between a.jpg and a.jpg.json ('-' < '.')
        "in/a.jpg-copy.png.json",
        "in/a.jpg.json",
        "in/b.jpg",  # no document
        "in/c.PNG",
        "in/c.PNG.json",
        "in/notes.txt",
        "in/notes.txt.json",
        "in/folder/",
        "in/z.jpg",  # last key, no document
    ]
    assert pairs(keys) == {
        "in/a.jpg": "in/a.jpg.json",
        "in/a.jpg-copy.png": "in/a.jpg-copy.png.json",
        "in/b.jpg": None,
        "in/c.PNG": "in/c.PNG.json",
        "in/z.jpg": None,
    }


def test_listing_resumes_after_a_key() -> None:
    keys = ["in/a.jpg", "in/a.jpg.json", "in/b.jpg", "in/c.jpg", "in/c.jpg.json"]
    assert pairs(keys, start_after="in/a.jpg.json") == {"in/b.jpg": None, "in/c.jpg": "in/c.jpg.json"}


def entry(key: str, result: bool, uploaded: datetime = T0) -> listing.Entry:
    return listing.Entry(key, "etag", 1, uploaded, key + ".json" if result else None)


NOW = reprocess.Current("model-b", {"min_confidence": 50.0, "label_overrides": {}, "candidate_floor": 10.0})


def document(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "schema_version": NOW.schema,
        "status": "ok",
        "model": {"model_id": "model-b"},
        "thresholds": dict(NOW.thresholds),
    }
    return base | changes


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({}, None),
        ({"model": {"model_id": "model-a"}}, "model"),
        ({"schema_version": "1.0"}, "schema"),
        ({"thresholds": {**NOW.thresholds, "min_confidence": 40.0}}, "thresholds"),
        ({"thresholds": {"min_confidence": 50.0}}, "thresholds"),  # written before candidates existed
    ],
)
def test_staleness_names_what_differs(changes: dict[str, Any], why: str | None) -> None:
    assert reprocess.staleness(document(**changes), NOW) == why


def test_missing_leaves_dead_letters_and_waiting_images_alone() -> None:
    settled = audit.Settled(frozenset({"in/dead.jpg"}), uploaded_before=T0)
    missing = reprocess.Selection(missing=True)
    assert reprocess.selected(entry("in/old.jpg", False, T0 - timedelta(hours=1)), None, missing, None, settled) == (
        "missing"
    )
    assert (
        reprocess.selected(entry("in/dead.jpg", False, T0 - timedelta(hours=1)), None, missing, None, settled) is None
    )
    assert reprocess.selected(entry("in/new.jpg", False, T0), None, missing, None, settled) is None
    assert reprocess.selected(entry("in/done.jpg", True), document(), missing, None, settled) is None


def test_errors_select_by_code_and_stale_by_reason() -> None:
    failed = document(status="error", error={"code": "IMAGE_UNREADABLE"})
    none = audit.Settled()
    assert reprocess.selected(entry("k", True), failed, reprocess.Selection(errors=True), None, none) == "error"
    only_throttled = reprocess.Selection(errors=True, codes=frozenset({"MODEL_THROTTLED"}))
    assert reprocess.selected(entry("k", True), failed, only_throttled, None, none) is None
    stale = reprocess.Selection(stale=True)
    old = document(model={"model_id": "model-a"})
    assert reprocess.selected(entry("k", True), old, stale, NOW, none) == "model"
    assert reprocess.selected(entry("k", True), document(), stale, NOW, none) is None
    assert reprocess.selected(entry("k", True), document(), reprocess.Selection(all=True), None, none) == "forced"


def test_a_reprocess_notification_is_read_by_the_function_like_one_from_s3() -> None:
    image = listing.Entry("in/holiday photos/ä+b (1).jpg", "abc123", 4321, T0, None)
    body = reprocess.notification("bucket", "eu-west-1", image, run="reprocess-1")
    parsed = parse_body(body)
    assert isinstance(parsed, list)
    (created,) = parsed
    assert created.ref.key == image.key
    assert (created.ref.bucket, created.ref.etag, created.ref.size) == ("bucket", "abc123", 4321)
    assert created.ref.rerun == "reprocess-1"
    assert created.event_name == "ObjectCreated:Put"
    plain_body = parse_body(reprocess.notification("bucket", "eu-west-1", image, run=None))
    assert isinstance(plain_body, list)
    (plain,) = plain_body
    assert plain.ref.rerun is None


def test_a_document_that_answers_an_older_upload_leaves_the_current_one_missing() -> None:
    # GIVEN the key's current upload (ETag "v2") beside a document that answers the one before ("v1")
    entry = listing.Entry("in/a.jpg", "v2", 1, T0, "in/a.jpg.json")
    older = {"status": "ok", "source": {"etag": "v1"}}
    current = {"status": "ok", "source": {"etag": "v2"}}
    waiting = audit.Settled(uploaded_before=T0)  # uploaded inside the waiting window
    late = audit.Settled(uploaded_before=T0 + timedelta(hours=1))

    # THEN audit says missing (exit 1) once its notification is late, waiting before; reprocess --missing takes it
    assert audit.state_of(entry, older, late) == ("missing", None, audit.OLDER_UPLOAD)
    assert audit.state_of(entry, older, waiting) == ("waiting", None, audit.OLDER_UPLOAD)
    assert audit.state_of(entry, current, late) == ("ok", None, None)
    assert reprocess.selected(entry, older, reprocess.Selection(missing=True), None, late) == "missing"
    assert reprocess.selected(entry, current, reprocess.Selection(missing=True), None, late) is None
    assert reprocess.Selection(missing=True).needs_documents


def test_while_the_trigger_is_paused_every_image_without_an_outcome_is_waiting() -> None:
    old = listing.Entry("in/old.jpg", "e", 1, T0 - timedelta(days=20), None)
    dead = listing.Entry("in/dead.jpg", "e", 1, T0 - timedelta(days=2), None)
    paused = audit.Settled(dead_letters=frozenset({"in/dead.jpg"}), paused=True)
    assert audit.state_of(old, None, paused) == ("waiting", None, audit.NO_RESULT)
    assert audit.state_of(dead, None, paused) == ("dead_letter", None, audit.NO_RESULT)
    assert reprocess.selected(old, None, reprocess.Selection(missing=True), None, paused) is None  # never twice
