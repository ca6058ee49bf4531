"""S3's ordering rule for one key, and what a notification means given the outcome already recorded."""

from __future__ import annotations

import pytest

from lambdas.inference.model import ObjectRef
from lambdas.inference.ordering import Verdict, judge, later


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("0055AED6DCD90281E6", "0055AED6DCD90281E5", True),
        ("0055AED6DCD90281E5", "0055AED6DCD90281E5", False),
        ("FF", "0100", False),  # left-padded: 00FF < 0100, although "FF" > "0100" as plain strings
        ("100", "FF", True),
        ("0a", "09", True),  # any letter case of hex
    ],
)
def test_the_greater_sequencer_after_zero_padding_is_the_later_event(a, b, expected):
    assert later(a, b) is expected


def document(version: str | None, sequencer: str | None, etag: str = "e", status: str = "ok") -> dict[str, object]:
    return {
        "schema_version": "1.1",
        "status": status,
        "source": {"version_id": version, "sequencer": sequencer, "etag": etag},
    }


def ref(version: str | None, sequencer: str | None, etag: str = "e") -> ObjectRef:
    return ObjectRef(bucket="b", key="k.jpg", version_id=version, etag=etag, sequencer=sequencer)


@pytest.mark.parametrize(
    ("event", "existing", "verdict"),
    [
        (ref("v1", "01"), None, Verdict.PROCESS),
        (ref("v2", "02"), document("v1", "01"), Verdict.PROCESS),  # a newer version
        (ref("v1", "01"), document("v2", "02"), Verdict.SUPERSEDED),  # the late event of an older version
        (ref("v2", "02"), document("v2", "02"), Verdict.DUPLICATE),  # the same event again
        (ref("v2", None), document("v2", "02"), Verdict.DUPLICATE),  # a message we made, same version
        (ref("v3", None), document("v2", "02"), Verdict.PROCESS),  # no sequencer to compare: not the same version
        (ref(None, None, etag="x"), document(None, None, etag="x"), Verdict.DUPLICATE),  # unversioned: the ETag
        (ref(None, None, etag="y"), document(None, None, etag="x"), Verdict.PROCESS),
        (ref("v1", "01"), document("v2", "02", status="error"), Verdict.SUPERSEDED),  # error documents count
    ],
)
def test_judge(event, existing, verdict):
    assert judge(event, existing) is verdict


def test_a_forced_rerun_processes_the_same_version_again_once_per_run():
    done_before = {**document("v2", "02"), "rerun": None}
    assert judge(ObjectRef(bucket="b", key="k.jpg", version_id="v2", rerun="run-1"), done_before) is Verdict.PROCESS
    done_by_this_run = {**document("v2", "02"), "rerun": {"run": "run-1"}}
    forced = ObjectRef(bucket="b", key="k.jpg", version_id="v2", rerun="run-1")
    assert judge(forced, done_by_this_run) is Verdict.DUPLICATE  # enqueued twice (an interrupted run): once
    assert (
        judge(ObjectRef(bucket="b", key="k.jpg", version_id="v2", rerun="run-2"), done_by_this_run) is Verdict.PROCESS
    )
