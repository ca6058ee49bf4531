"""The emulator's S3 applies a PUT, its condition and its metadata as one step, as S3 does (moto alone does not:
``inferctl/emulator/s3_atomic.py``). Made deterministic by widening moto's window between the check and the
store, and between storing an object and setting its metadata."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from inferctl.emulator.resources import Resources, provision
from stacks.config import StackConfig

WINDOW = 0.2


@pytest.fixture
def aws() -> Iterator[tuple[Any, Resources]]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        yield session, provision(session, StackConfig.from_cdk_json(), name="atomic")


def test_two_conditional_writers_cannot_both_create_the_key(aws, monkeypatch):
    from moto.s3.models import S3Backend

    session, resources = aws
    store = S3Backend.put_object

    def slow_store(self: Any, *args: Any, **kwargs: Any) -> Any:
        time.sleep(WINDOW)  # both writers have passed If-None-Match by now, unless requests are one at a time
        return store(self, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", slow_store)
    outcomes: list[str] = []

    def write(body: bytes) -> None:
        try:
            session.client("s3").put_object(Bucket=resources.bucket, Key="k.json", Body=body, IfNoneMatch="*")
            outcomes.append("written")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])

    threads = [threading.Thread(target=write, args=(body,)) for body in (b"1", b"2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["PreconditionFailed", "written"]


def test_a_reader_never_sees_an_object_without_its_metadata(aws, monkeypatch):
    from moto.s3.models import FakeKey
    from moto.s3.responses import S3Response

    session, resources = aws
    set_metadata, handle = FakeKey.set_metadata, S3Response._key_response
    stored, read_arrived = threading.Event(), threading.Event()

    def late_metadata(self: Any, *args: Any, **kwargs: Any) -> Any:
        # the object is in the bucket, its metadata not yet: wait here until a GET of it has reached the emulator
        stored.set()
        read_arrived.wait(10)
        return set_metadata(self, *args, **kwargs)

    def arriving(self: Any, request: Any, full_url: str) -> Any:
        if request.method == "GET":
            read_arrived.set()
        return handle(self, request, full_url)

    monkeypatch.setattr(FakeKey, "set_metadata", late_metadata)
    monkeypatch.setattr(S3Response, "_key_response", arriving)
    s3, reader = session.client("s3"), session.client("s3")
    writer = threading.Thread(
        target=lambda: s3.put_object(Bucket=resources.bucket, Key="r.json", Body=b"{}", Metadata={"producer": "x"})
    )
    writer.start()
    assert stored.wait(10)

    # WHEN a reader GETs the object between its store and its metadata
    metadata = reader.get_object(Bucket=resources.bucket, Key="r.json")["Metadata"]
    writer.join()

    # THEN it sees the object with its metadata (the GET waited for the whole PUT), never without
    assert read_arrived.is_set()
    assert metadata == {"producer": "x"}


def test_environments_as_threads_print_each_metric_once(monkeypatch, capsys):
    """Execution environments are threads here, sharing Powertools' one metric set: two flushes at once must not
    both print it (on Lambda one invocation at a time uses a process)."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    from inferctl.emulator.stack import _one_metric_store_at_a_time

    metrics = Metrics(namespace="Test", service="test")
    serialize = metrics.provider.serialize_metric_set

    def slow_serialize(*args: Any, **kwargs: Any) -> Any:
        time.sleep(WINDOW)  # both flushes are serialising the same set by now, unless they take turns
        return serialize(*args, **kwargs)

    monkeypatch.setattr(metrics.provider, "serialize_metric_set", slow_serialize)
    capsys.readouterr()
    failures: list[BaseException] = []

    def flush() -> None:
        try:
            metrics.provider.flush_metrics()
        except Exception as exc:
            failures.append(exc)

    with _one_metric_store_at_a_time(metrics):
        metrics.add_metric(name="ImagesProcessed", unit=MetricUnit.Count, value=1)
        threads = [threading.Thread(target=flush) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    printed = [line for line in capsys.readouterr().out.splitlines() if "ImagesProcessed" in line]
    assert len(printed) == 1
    # unguarded, the second flush serialised a set the first had just cleared: the invocation failed
    assert failures == []
