"""The core promise, run the way Lambda runs the function: every invocation in a fresh process with the
function's environment (set before the interpreter starts), killed above its memory size or past its timeout
(``inferctl/emulator/isolation.py``), on the embedded stack's queue with its redrive.

Promise: every image ends with exactly one outcome (a result for its newest version, an error document that
says why, or a dead letter for a failure that may pass), within the function's memory and time, and no
image's trouble spills onto its neighbours (each neighbour: one result, never dead-lettered, never failed with
the troubled image's error, one result written).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from inferctl.emulator import isolation
from inferctl.emulator.models import stand_in
from inferctl.emulator.models.base import ModelFault, Trickled
from inferctl.emulator.resources import notification_configuration
from inferctl.stack import reprocess
from inferctl.stack.outcomes import read_result
from lambdas.contract import errors
from lambdas.contract.errors import PermanentError
from lambdas.inference.images import read_header
from tests.support import corpus, pictures
from tests.support.faithful import (
    MEMORY_MB,
    MUTATIONS_PER_BASE,
    Gate,
    Harness,
    assert_neighbours_once,
    digest,
    harness,
    wait_for_version,
    wait_until_queue_is_empty,
    with_tail,
)
from tests.support.mutations import IMAGE_CODES, Mutation, bases, declared_size, mutations


@pytest.fixture(scope="module")
def roomy() -> Iterator[Harness]:
    """The stack's defaults (60 s, 1024 MB), two receives before the dead-letter queue."""
    yield from harness({"maxReceiveCount": 2})


# --- 1. memory: what the decoder really holds ---------------------------------------------------------------


def test_ten_progressive_photos_in_one_batch_stay_within_the_functions_memory(roomy: Harness):
    # GIVEN ten 6000 x 4000 progressive 4:4:4 photos (about 2 MB each; 144 MB of coefficients each to decode)
    photo = corpus.path(next(e for e in corpus.entries() if e.name == "jpeg-progressive-444")).read_bytes()
    photos = {f"progressive/{n}.jpg": with_tail(photo, n) for n in range(10)}

    calls_before = sum(roomy.model.calls.values())

    # WHEN they arrive in one batch of a 1024 MB function
    states = roomy.run(photos)

    # THEN ten results, in one invocation that was never killed and stayed under its memory size
    assert {name: state.state for name, state in states.items()} == dict.fromkeys(photos, "ok")
    assert roomy.kills() == []
    assert max(report.max_memory_used_mb for report in roomy.reports) < MEMORY_MB
    assert sum(roomy.model.calls.values()) - calls_before == 10  # one call each (downscaled: the same bytes)


def test_a_progressive_jpeg_too_large_to_decode_is_an_error_document_not_a_kill(roomy: Harness):
    # GIVEN the 2.1 MB progressive 13376 x 13376 4:4:4 JPEG (1.07 GB of coefficients) beside an ordinary photo
    huge = corpus.huge_progressive_jpeg().read_bytes()
    neighbours = {"ordinary.jpg": pictures.jpeg(640, 480)}

    states = roomy.run({"huge.jpg": huge, **neighbours})

    assert states["huge.jpg"].state == "error"
    document = states["huge.jpg"].document
    assert document is not None
    assert document["error"]["code"] == errors.IMAGE_TOO_LARGE
    assert "lambdaMemoryMb" in document["error"]["message"]
    assert roomy.model.count(huge) == 0
    assert roomy.kills() == []
    assert_neighbours_once(roomy, states, neighbours)


# --- the fuzz corpus's riskiest cases, as Lambda runs them ----------------------------------------------------


def claimed_pixels(data: bytes) -> int:
    """What a mutated file's header says it holds (0 when it says nothing usable)."""
    try:
        header = read_header(data, complete=True)
    except PermanentError:
        return 0
    return header.width * header.height if header else 0


def riskiest_mutations() -> list[Mutation]:
    """Per base image, the two mutations of the fuzz corpus whose headers claim the most pixels (the ones that
    could make a decoder allocate far beyond the file) and one more, seeded: 48 files."""
    by_base: dict[str, list[Mutation]] = {}
    for mutation in mutations(MUTATIONS_PER_BASE):
        by_base.setdefault(mutation.base, []).append(mutation)
    chosen = []
    for group in by_base.values():
        ranked = sorted(group, key=lambda m: claimed_pixels(m.data), reverse=True)
        chosen += [*ranked[:2], ranked[2 + len(group) // 2]]
    return chosen


def test_the_fuzz_corpuss_riskiest_images_end_with_one_outcome_each_and_no_kill(roomy: Harness):
    # GIVEN 48 mutated images of every format and coding, mixed with ordinary photos (five batches of ten)
    mutated = {m.name: m.data for m in riskiest_mutations()}
    neighbours = {f"ordinary-{n}.jpg": pictures.jpeg(320 + n, 240) for n in range(2)}

    states = roomy.run({**mutated, **neighbours})

    # THEN no invocation was killed, nothing went to the dead-letter queue, and each mutated image has a result
    # or an error document whose code says what is wrong with the image
    assert roomy.kills() == []
    assert roomy.dead_lettered() == set()
    wrong = {
        name: (state.state, (state.document or {}).get("error", {}).get("code"))
        for name, state in states.items()
        if name in mutated
        and not (
            state.state == "ok"
            or (state.state == "error" and (state.document or {}).get("error", {}).get("code") in IMAGE_CODES)
        )
    }
    assert wrong == {}
    assert {state.state for name, state in states.items() if name in mutated} == {"ok", "error"}
    assert_neighbours_once(roomy, states, neighbours)


def test_small_files_that_declare_huge_images_end_with_one_outcome_each_without_a_kill(roomy: Harness):
    # GIVEN every base of the fuzz corpus (but WebP, whose size fields are 14 bits) with its header declaring
    # 9000 x 9000, 12000 x 12000 (within Pillow's bomb limit: decoders would allocate 0.3-1.1 GB) and
    # 20000 x 20000 (beyond it), its pixels left as they were: files of a few KB, five batches of ten
    declared = {
        f"{size}-{Mutation(base, 0, 'declared', b'').name}": declared_size(base, data, size, size)
        for base, data in bases().items()
        if not base.startswith("webp")
        for size in (9000, 12000, 20000)
    }
    neighbours = {f"ordinary-{n}.jpg": pictures.jpeg(320 + n, 240) for n in range(2, 10)}

    states = roomy.run({**declared, **neighbours})

    # THEN no kill and no dead letter; each has a result (a decoder accepted it: a GIF's canvas may be larger
    # than its frames, libjpeg fills a scan that ends early) or an error document naming what is wrong with
    # the image; what no function could decode is IMAGE_TOO_LARGE, and the rest decoded one at a time
    assert roomy.kills() == []
    assert max(report.max_memory_used_mb for report in roomy.reports) < MEMORY_MB
    assert roomy.dead_lettered() == set()
    codes = {name: ((states[name].document or {}).get("error") or {}).get("code") for name in declared}
    wrong = {name: (states[name].state, code) for name, code in codes.items() if states[name].state != "ok"}
    assert {name: outcome for name, outcome in wrong.items() if outcome[1] not in IMAGE_CODES} == {}
    assert {codes[name] for name in declared if name.startswith("20000-")} == {errors.IMAGE_TOO_LARGE}
    assert_neighbours_once(roomy, states, neighbours)


# --- 7. multi-page TIFF ---------------------------------------------------------------------------------------


def test_a_plain_two_page_tiff_gets_a_result_from_its_first_page(roomy: Harness):
    pages = [pictures.picture(640, 480, color=(200, 40, 40)), pictures.picture(640, 480, color=(40, 40, 200))]
    buffer = io.BytesIO()
    pages[0].save(buffer, format="TIFF", save_all=True, append_images=pages[1:])

    states = roomy.run({"two-pages.tif": buffer.getvalue()})

    document = states["two-pages.tif"].document
    assert states["two-pages.tif"].state == "ok", document
    assert document is not None
    assert "first_frame_of_2" in document["image"]["transformations"]


# --- 5. result keys: forged, foreign, oversized -----------------------------------------------------------


def test_what_sits_at_a_result_key_without_the_functions_mark_is_never_trusted_nor_read_whole(roomy: Harness):
    s3 = roomy.target.client("s3")
    prefix, bucket = roomy.target.input_prefix, roomy.target.bucket
    forged = {  # every field of a result, a huge sequencer, but not written by the function
        "schema_version": "1.5",
        "producer": "image-inference",
        "status": "ok",
        "source": {"bucket": bucket, "key": prefix + "forged.jpg", "sequencer": "F" * 40},
        "model": {"backend": "sagemaker", "model_id": "x"},
        "thresholds": {},
        "timing": {},
        "labels": [{"name": "unicorn", "confidence": 100.0, "bounding_box": None}],
    }
    users_json = {"schema_version": "2", "source": {"camera": "front door"}}
    oversized = b'{"padding": "' + b"x" * (39 * 1024 * 1024) + b'"}'
    for name, body in (
        ("forged.jpg.json", json.dumps(forged).encode()),
        ("notes.jpg.json", json.dumps(users_json).encode()),
        ("big.jpg.json", oversized),
    ):
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=body)
    taken = {
        "forged.jpg": pictures.jpeg(300, 200),
        "notes.jpg": pictures.jpeg(310, 200),
        "big.jpg": pictures.jpeg(320, 200),
    }
    neighbours = {"fine.jpg": pictures.jpeg(330, 200)}

    states = roomy.run({**taken, **neighbours})

    # The images wait in the dead-letter queue, where `inferctl dlq` says why; nothing at their keys changed.
    why = roomy.why_dead_lettered()
    for name in taken:
        assert states[name].state == "dead_letter", (name, states[name])
        assert (why[name] or "").startswith(errors.RESULT_KEY_TAKEN), why
        # One billed call: the first delivery learns of the key from its refused write; the redelivery reads
        # the key first and calls nothing (docs/results.md)
        assert roomy.model.count(taken[name]) == 1
    assert json.loads(s3.get_object(Bucket=bucket, Key=prefix + "notes.jpg.json")["Body"].read()) == users_json
    assert json.loads(s3.get_object(Bucket=bucket, Key=prefix + "forged.jpg.json")["Body"].read()) == forged
    assert read_result(s3, bucket, prefix + "forged.jpg") is None  # the operator tool does not trust it either
    assert roomy.kills() == []  # the 39 MB document was never read
    assert_neighbours_once(roomy, states, neighbours)


# --- 6. bounded answers -------------------------------------------------------------------------------------


def test_model_answers_are_bounded_and_a_loading_model_is_waited_for(roomy: Harness):
    huge_answer, many_boxes, loading = pictures.jpeg(300, 210), pictures.jpeg(300, 220), pictures.jpeg(300, 230)
    rows = [[float(n % 7), 0.9 - (n % 1000) / 2000, 0.1, 0.1, 0.2, 0.2] for n in range(400_000)]  # ~11 MB
    roomy.model.special[digest(huge_answer)] = lambda body, kind: {"prediction": rows}
    roomy.model.special[digest(many_boxes)] = lambda body, kind: {"prediction": rows[:20_000]}  # ~0.6 MB

    def servable_not_found_once(body: bytes, kind: str) -> Any:
        if roomy.model.count(loading) == 1:
            raise ModelFault("rejected", "Servable not found for request: Latest(model)", status=404)
        return stand_in.detect(body, kind)

    roomy.model.special[digest(loading)] = servable_not_found_once
    neighbours = {"plain.jpg": pictures.jpeg(300, 240)}

    states = roomy.run(
        {"huge-answer.jpg": huge_answer, "many-boxes.jpg": many_boxes, "loading.jpg": loading, **neighbours}
    )

    too_large = states["huge-answer.jpg"].document
    assert too_large is not None
    assert too_large["error"]["code"] == errors.MODEL_OUTPUT_TOO_LARGE
    many = states["many-boxes.jpg"].document
    assert many is not None
    assert many["status"] == "ok"
    assert len(many["labels"]) + len(many["candidates"]) <= 1000
    assert many["over_limit_label_count"] == 20_000 - 1000
    assert [label["confidence"] for label in many["labels"][:2]] == [90.0, 90.0]  # the most confident kept
    assert states["loading.jpg"].state == "ok"  # retried, not an error document
    assert roomy.model.count(loading) == 2
    assert roomy.kills() == []
    assert_neighbours_once(roomy, states, neighbours)


# --- 2 and 3. order: the newest version's result stands ------------------------------------------------------


@pytest.fixture(scope="module")
def two_environments() -> Iterator[Harness]:
    """Two execution environments, so that one invocation can finish while another waits on the model."""
    yield from harness({"maxReceiveCount": 2}, containers=2)


def test_a_reprocess_message_in_flight_never_replaces_the_newer_versions_result(two_environments: Harness):
    h, s3 = two_environments, two_environments.target.client("s3")
    key = h.target.input_prefix + "race/reprocess.jpg"
    v1_data, v2_data = pictures.jpeg(321, 240), pictures.jpeg(322, 240)
    gate = Gate(h.model, v1_data, hold_call=2)  # the re-run of v1 waits at the model
    with h.trigger():
        v1 = s3.put_object(Bucket=h.target.bucket, Key=key, Body=v1_data)["VersionId"]
        wait_for_version(h, key, v1)
        # WHEN `inferctl reprocess --all` re-runs v1 and, while that waits on the model, v2 is uploaded
        selection = reprocess.Selection(all=True)
        report = reprocess.reprocess(h.target, selection, prefix=h.target.input_prefix + "race/reprocess")
        assert report.enqueued == 1
        assert gate.entered.wait(60)
        v2 = s3.put_object(Bucket=h.target.bucket, Key=key, Body=v2_data)["VersionId"]
        wait_for_version(h, key, v2)
        gate.release.set()
        # THEN once the re-run of v1 has written or given up, the result still answers v2
        wait_until_queue_is_empty(h)
    document = read_result(s3, h.target.bucket, key)
    assert document is not None
    assert document["source"]["version_id"] == v2
    assert (h.model.count(v1_data), h.model.count(v2_data)) == (2, 1)
    assert key not in h.dead_lettered()


# Sequencers from AWS's own examples of different lengths (the S3 User Guide's EventBridge "Object Created"
# example, newer and older spelling). By S3's rule (right-pad the shorter with zeros, compare as strings) the
# 16-character one is the later event; compared as numbers the two are equal and nothing would be superseded.
EARLIER, LATER = "00617F08299329D189", "617f08299329d189"


def test_the_later_sequencer_wins_by_s3s_rule_when_two_versions_race(two_environments: Harness):
    h, s3, sqs = two_environments, two_environments.target.client("s3"), two_environments.target.client("sqs")
    bucket, key = h.target.bucket, h.target.input_prefix + "race/sequencer.jpg"
    v1_data, v2_data = pictures.jpeg(323, 240), pictures.jpeg(324, 240)
    gate = Gate(h.model, v1_data, hold_call=1)
    # The events are sent by hand (the bucket's route is off for this test) with sequencers of two lengths
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    try:
        with h.trigger():
            v1 = s3.put_object(Bucket=bucket, Key=key, Body=v1_data)["VersionId"]
            sqs.send_message(QueueUrl=h.target.queue_url, MessageBody=s3_event(bucket, key, v1, v1_data, EARLIER))
            assert gate.entered.wait(60)  # v1 was current when its invocation looked; now it waits on the model
            v2 = s3.put_object(Bucket=bucket, Key=key, Body=v2_data)["VersionId"]
            sqs.send_message(QueueUrl=h.target.queue_url, MessageBody=s3_event(bucket, key, v2, v2_data, LATER))
            wait_for_version(h, key, v2)
            gate.release.set()  # v1's conditional write fails; it judges again against v2's document
            wait_until_queue_is_empty(h)
    finally:
        config = notification_configuration()
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    document = read_result(s3, bucket, key)
    assert document is not None
    assert (document["source"]["version_id"], document["source"]["sequencer"]) == (v2, LATER)
    assert h.model.count(v1_data) == 1  # v1 was inferred, and its result given up for v2's


def s3_event(bucket: str, key: str, version: str, data: bytes, sequencer: str) -> str:
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": bucket},
            "object": {
                "key": key,
                "size": len(data),
                "eTag": hashlib.md5(data).hexdigest(),
                "versionId": version,
                "sequencer": sequencer,
            },
        },
    }
    return json.dumps({"Records": [record]})


# --- 4. time: a model that trickles its answer --------------------------------------------------------------


@pytest.fixture(scope="module")
def short_timeout() -> Iterator[Harness]:
    """A 6 s function (a whole model call gets 4 s), two receives before the dead-letter queue, a second
    between retries. Each read may wait 3 s (derived, it would be 1 s: on a busy machine a healthy neighbour's
    first byte took longer, and it failed like the trickling image)."""
    for h in harness({"lambdaTimeoutSeconds": 6, "maxReceiveCount": 2}):
        h.stack.function.environment["BACKEND_READ_TIMEOUT_SECONDS"] = "3"
        yield h


def test_a_trickling_model_fails_its_own_image_only(short_timeout: Harness):
    h = short_timeout
    slow = pictures.jpeg(301, 240)
    # Five bytes a second: every socket read gets a byte well inside its 3 s read timeout; the whole answer
    # (about 120 bytes) would take 24 s, the function has 6.
    answer = {"prediction": [[0.0, 0.9, 0.1, 0.1, 0.6, 0.6], [1.0, 0.8, 0.2, 0.2, 0.7, 0.7]] * 2}
    h.model.special[digest(slow)] = lambda body, kind: Trickled(answer, 0.2)
    neighbours = {f"fine-{n}.jpg": pictures.jpeg(310 + n, 240) for n in range(4)}
    for data in neighbours.values():  # they answer at once: only the trickle is slow (the demo model's pixel
        h.model.special[digest(data)] = lambda body, kind: answer  # analysis, under a busy machine's load, was too)

    states = h.run({"slow.jpg": slow, **neighbours}, timeout=120)

    assert states["slow.jpg"].state == "dead_letter"  # a failure that may pass: retried, then kept
    assert (h.why_dead_lettered()["slow.jpg"] or "").startswith(errors.BACKEND_TIMEOUT)  # the call was bounded
    assert h.kills() == []  # every invocation answered before its timeout
    assert_neighbours_once(h, states, neighbours, troubled=errors.BACKEND_TIMEOUT)


# --- 5. the execution environment's own variables --------------------------------------------------------------

PROBE = """
import gc
import os

from lambdas.inference import handler as function  # its first lines pause the collector in an execution environment

PAUSED_AT_INIT = not gc.isenabled()


def handler(event, context):
    return {"runtime_api": os.environ.get("AWS_LAMBDA_RUNTIME_API"), "paused_at_init": PAUSED_AT_INIT}
"""


def test_the_function_starts_as_in_an_execution_environment_where_lambda_sets_the_runtime_api(tmp_path):
    """Lambda sets AWS_LAMBDA_RUNTIME_API in every runtime, and the function starts differently where it is set
    (the collector paused, the threads kept on one CPU): the faithful runner sets it too, so its memory-killed runs
    see the start Lambda would (it fails when the runner leaves the variable out)."""
    (tmp_path / "lambdas").symlink_to(isolation.task_root() / "lambdas", target_is_directory=True)
    (tmp_path / "probe.py").write_text(PROBE, encoding="utf-8")
    invoker = isolation.ProcessInvoker(
        lambda: {}, memory_mb=MEMORY_MB, timeout_seconds=30, handler="probe.handler", code_root=tmp_path
    )
    assert invoker({"Records": []}) == {"runtime_api": isolation.RUNTIME_API, "paused_at_init": True}
    assert [report.status for report in invoker.reports] == ["ok"]
