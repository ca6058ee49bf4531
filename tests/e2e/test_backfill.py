"""Reprocess and audit on the embedded stack: 115 objects, of which some were uploaded before the
notifications existed, some are dead-lettered on purpose and some have error documents. ``audit`` counts each
category exactly; ``reprocess --missing`` leaves none missing; ``--stale`` after a model change re-runs
exactly the stale ones; an interrupted run, resumed, enqueues each image once."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from inferctl import cli
from inferctl.emulator.models import stand_in
from inferctl.emulator.models.base import LocalModel, ModelFault
from inferctl.emulator.resources import notification_configuration
from inferctl.emulator.stack import EmbeddedStack, embedded_stack, write_state
from inferctl.samples import scene
from inferctl.scenarios.demo.run import demo_config
from inferctl.stack import audit, reprocess, uploads
from inferctl.stack.outcomes import read_result
from inferctl.stack.target import Target, from_outputs
from lambdas.contract.events import result_key_for
from tests.support.emulated import backdate_uploads

SUBSET = 40  # normal/00.. and normal/01..: 40 each
NORMAL, CORRUPT, POISON, EARLY = 2 * SUBSET, 10, 5, 20
LATER = datetime.now(UTC) + timedelta(hours=1)  # audit "now": long past any image's waiting window


def picture(index: int) -> bytes:
    buffer = io.BytesIO()
    scene(index % 40, ["sun", "tree"]).resize((96, 72)).save(buffer, format="JPEG", quality=70)
    return buffer.getvalue() + f"#{index}".encode()  # unique bytes: the model's calls can be told apart


class CountingModel:
    """The demo model; fails for poisoned images (they end in the DLQ); counts calls per image."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, body: bytes, content_type: str) -> Any:
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            self.calls[digest] += 1
        if body.endswith(b"poison"):
            raise ModelFault("internal", "this image always breaks the model")
        return stand_in.detect(body, content_type)


def normal(index: int) -> str:
    """The index-th normal image: the first SUBSET under normal/00, the rest under normal/01."""
    return f"normal/{index // SUBSET:02d}{index % SUBSET:02d}.jpg"


def digests(target: Target, keys: list[str]) -> set[str]:
    """What the model is called with, told apart by content: the images' bytes as stored."""
    s3 = target.client("s3")
    found = {hashlib.sha256(s3.get_object(Bucket=target.bucket, Key=k)["Body"].read()).hexdigest() for k in keys}
    assert len(found) == len(keys)
    return found


def result_versions(target: Target, keys: list[str]) -> Counter[str]:
    """Per image key, how many versions its result key holds (the bucket is versioned): what landed in S3."""
    s3, versions = target.client("s3"), Counter[str]()
    wanted = {result_key_for(key): key for key in keys}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=target.bucket, Prefix=target.input_prefix):
        for version in page.get("Versions", []):
            if version["Key"] in wanted:
                versions[wanted[version["Key"]]] += 1
    return versions


def assert_once_each(target: Target, keys: list[str], before: Counter[str]) -> None:
    """Each image worked through to one new result since ``before`` (the result versions then): a second
    result for a key is a selection or dedupe bug. Counted in S3, not in the log: an invocation that ends past
    its timeout after the write never logs it. (The model may have been asked more often: botocore retries a
    call that timed out on a busy machine.)"""
    after = result_versions(target, keys)
    assert {key: after[key] - before[key] for key in keys} == dict.fromkeys(keys, 1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedStack, Target, CountingModel, Path]]:
    folder = tmp_path_factory.mktemp("backfill")
    # Five receives, as deployed, and a 30 s function: with 10 s, a busy 2-core machine (four test workers) ran 19 of
    # the 100 stale re-runs out of their time five times each, into the dead-letter queue, and the test waited for
    # results that could not come.
    config = demo_config({"lambdaTimeoutSeconds": 30, "maxReceiveCount": 5, "retryDelayMaxSeconds": 1})
    model = CountingModel()
    models: dict[str, LocalModel] = {"stand-in-shapes": model, "stand-in-shapes-v2": model}
    with embedded_stack(config, models, log_path=folder / "lambda.log", capture_stdout=True) as stack:
        write_state(stack, folder / "embedded.json")
        target = from_outputs(stack.session, stack.state(), None, "embedded")
        s3 = stack.client("s3")
        # Uploaded before the bucket notified anything: no event ever came for these.
        s3.put_bucket_notification_configuration(Bucket=target.bucket, NotificationConfiguration={})
        uploads.upload_many(target, [(f"early/{i:04d}.jpg", picture(i)) for i in range(EARLY)], progress=False)
        s3.put_bucket_notification_configuration(
            Bucket=target.bucket,
            NotificationConfiguration=notification_configuration(),
        )
        items = [(normal(i), picture(1000 + i)) for i in range(NORMAL)]
        items += [(f"corrupt/{i:03d}.jpg", b"not an image, a note #%d" % i) for i in range(CORRUPT)]
        items += [(f"poison/{i:03d}.jpg", picture(5000 + i) + b"poison") for i in range(POISON)]
        sent = uploads.upload_many(target, items, progress=False)
        found = uploads.wait_for(target, [u.key for u in sent], timeout=600, progress=False, poll_seconds=3)
        assert Counter(state.state for state in found.values()) == {
            "ok": NORMAL,
            "error": CORRUPT,
            "dead_letter": POISON,
        }
        yield stack, target, model, folder


def test_audit_reports_each_category_exactly(world, tmp_path):
    _, target, _, _ = world
    rows: list[dict[str, Any]] = []
    result = audit.audit(target, write_row=rows.append, now=LATER)

    assert result.images == NORMAL + CORRUPT + POISON + EARLY
    assert result.counts == {"ok": NORMAL, "error": CORRUPT, "dead_letter": POISON, "missing": EARLY}
    assert result.error_codes == {"IMAGE_UNREADABLE": CORRUPT}
    missing = sorted(row["key"] for row in rows if row["state"] == "missing")
    assert missing == sorted(f"{target.input_prefix}early/{i:04d}.jpg" for i in range(EARLY))


def test_reprocess_missing_then_audit_shows_none_missing(world, capsys):
    _, target, model, folder = world
    state = str(folder / "embedded.json")
    before = Counter(model.calls)

    # The early images were uploaded before the bucket notified anything, long ago: past any waiting window.
    assert backdate_uploads(target.bucket, f"{target.input_prefix}early/", timedelta(days=1)) == EARLY
    assert cli.main(["reprocess", "--missing", "--dry-run", "--embedded", state]) == 0
    out = capsys.readouterr().out
    assert f"{EARLY} selected (missing={EARLY}); would enqueue {EARLY}" in out  # sent nothing: see below
    assert f"left alone: dead_letter={POISON}" in out  # the DLQ's own way back is `dlq --redrive`
    keys = [f"{target.input_prefix}early/{i:04d}.jpg" for i in range(EARLY)]
    versions = result_versions(target, keys)
    code = cli.main(["reprocess", "--missing", "--rate", "50", "--state", str(folder / "r.json"), "--embedded", state])
    assert code == 0
    found = uploads.wait_for(target, keys, timeout=300, progress=False, poll_seconds=2)
    assert Counter(state.state for state in found.values()) == {"ok": EARLY}
    assert set(model.calls - before) == digests(target, keys)  # exactly the missing ones were run
    assert_once_each(target, keys, versions)

    result = audit.audit(target, now=LATER)
    assert result.counts == {"ok": NORMAL + EARLY, "error": CORRUPT, "dead_letter": POISON}
    assert cli.main(["audit", "--format", "json", "--embedded", state]) == 0  # none missing: exit 0


def test_stale_after_a_model_change_reruns_exactly_the_stale_ones(world):
    _, target, model, _ = world
    subset = f"{target.input_prefix}normal/00"  # SUBSET images
    lambda_client = target.client("lambda")
    live = lambda_client.get_function_configuration(FunctionName=target.function_name)
    env = {**live["Environment"]["Variables"], "SAGEMAKER_ENDPOINT_NAME": "stand-in-shapes-v2"}
    lambda_client.update_function_configuration(FunctionName=target.function_name, Environment={"Variables": env})
    calls_before = Counter(model.calls)
    keys = [target.input_prefix + normal(i) for i in range(SUBSET)]
    versions = result_versions(target, keys)

    report = reprocess.reprocess(target, reprocess.Selection(stale=True), prefix=subset, per_second=50)

    assert (report.selected, report.by_reason) == (SUBSET, {"model": SUBSET})
    deadline = datetime.now(UTC) + timedelta(seconds=600)  # a limit for a failure, not a pace
    s3, rerun = target.client("s3"), set[str]()
    while datetime.now(UTC) < deadline and len(rerun) < len(keys):
        for key in set(keys) - rerun:  # each poll reads only the results not yet re-run
            document = read_result(s3, target.bucket, key)
            if document and document["model"]["model_id"] == "stand-in-shapes-v2":
                rerun.add(key)
        time.sleep(1)
    assert rerun == set(keys)
    new_calls = model.calls - calls_before
    assert set(new_calls) == digests(target, keys)  # exactly the stale ones were re-run
    assert_once_each(target, keys, versions)
    # A second --stale finds nothing left to do in that subset.
    assert reprocess.reprocess(target, reprocess.Selection(stale=True), prefix=subset, dry_run=True).selected == 0


def test_an_interrupted_run_resumed_enqueues_each_image_once(world, tmp_path):
    _, target, _, _ = world
    subset = f"{target.input_prefix}normal/01"  # SUBSET images, forced again (--all)
    state = tmp_path / "progress.json"
    sent: list[str] = []
    real_client = target.client

    def counting_client(service: str) -> Any:
        client = real_client(service)
        if service == "sqs":
            original = client.send_message_batch

            def send(**kwargs: Any) -> Any:
                sent.extend(entry["MessageBody"] for entry in kwargs["Entries"])
                return original(**kwargs)

            client.send_message_batch = send
        return client

    object.__setattr__(target, "client", counting_client)
    try:
        first = reprocess.reprocess(
            target, reprocess.Selection(all=True), prefix=subset, state=state, per_second=500, stop_after_batches=2
        )
        assert first.interrupted
        assert first.enqueued == 20
        second = reprocess.reprocess(
            target, reprocess.Selection(all=True), prefix=subset, state=state, resume=True, per_second=500
        )
    finally:
        object.__delattr__(target, "client")
    assert not second.interrupted
    assert second.enqueued == SUBSET
    keys = Counter(body.split('"key": "', 1)[1].split('"', 1)[0] for body in sent)
    assert len(keys) == SUBSET
    assert set(keys.values()) == {1}  # each image enqueued exactly once
