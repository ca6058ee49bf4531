"""S3's ordering rule for one key, and what a notification means given the outcome already recorded."""

from __future__ import annotations

import pytest

from lambdas.contract.ordering import Verdict, judge, later
from lambdas.contract.values import ObjectRef

# Sequencers as AWS's own examples spell them: the S3 User Guide's versioned PUT ("0055AED6DCD90281E5", 18
# characters), the Lambda console's s3-put event ("0A1B2C3D4E5F678901"), and the S3 User Guide's EventBridge
# "Object Created" example, in its older ("617f08299329d189", 16 characters, lower case) and newer
# ("00617F08299329D189") spelling.
USER_GUIDE = "0055AED6DCD90281E5"
LAMBDA_CONSOLE = "0A1B2C3D4E5F678901"
EVENTBRIDGE_OLD = "617f08299329d189"
EVENTBRIDGE_NEW = "00617F08299329D189"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("0055AED6DCD90281E6", USER_GUIDE, True),
        (USER_GUIDE, USER_GUIDE, False),
        (LAMBDA_CONSOLE, USER_GUIDE, True),  # same length: plain string order
        # Different lengths, right-padded: "617F08299329D18900" > "0055AED6DCD90281E5". Compared as numbers
        # (left-padded, the old reading) the 18-character one would be the later event.
        (EVENTBRIDGE_OLD, USER_GUIDE, True),
        (USER_GUIDE, EVENTBRIDGE_OLD, False),
        (EVENTBRIDGE_OLD, EVENTBRIDGE_NEW, True),  # "617F...D18900" > "00617F...D189"
        (USER_GUIDE, USER_GUIDE[:16], True),  # a longer value that extends a shorter one comes later
        (USER_GUIDE[:16], USER_GUIDE, False),
        (USER_GUIDE[:16] + "00", USER_GUIDE[:16], False),  # equal once padded: not later
        ("0a", "09", True),  # any letter case of hex
    ],
)
def test_sequencers_right_padded_with_zeros_then_compared_as_strings(a, b, expected):
    assert later(a, b) is expected


def test_a_sequencer_that_is_not_hex_is_refused():
    with pytest.raises(ValueError, match="not a hexadecimal"):
        later("Happy Sequencer", USER_GUIDE)


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
        # No sequencer to compare with: only the key's current version decides (the pipeline asks S3).
        (ref("v3", None), document("v2", "02"), Verdict.UNORDERED),
        (ref("v3", "03"), document("v2", None), Verdict.UNORDERED),
        (ref(None, None, etag="x"), document(None, None, etag="x"), Verdict.DUPLICATE),  # unversioned: the ETag
        (ref(None, None, etag="y"), document(None, None, etag="x"), Verdict.UNORDERED),
        (ref(None, "02", etag="y"), document(None, "01", etag="x"), Verdict.PROCESS),
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


def test_a_forced_rerun_never_reaches_past_another_versions_document():
    # inferctl reprocess --stale enqueued v1; v2 was uploaded and processed meanwhile.
    newer = {**document("v2", "02"), "rerun": None}
    forced_old = ObjectRef(bucket="b", key="k.jpg", version_id="v1", rerun="run-1")
    assert judge(forced_old, newer) is Verdict.UNORDERED
