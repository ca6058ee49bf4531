"""The function's rows on the embedded stack: the real handler on the local trigger, the emulated Firehose stream.

- Each outcome (result or error document) becomes a row, in one PutRecordBatch per batch at most, and the table's
  current_outcomes is exactly what S3 holds.
- A stream that refuses rows loses none: the refused records fail, come back after their back-off, find their
  documents written (no second write, no second model call) and send only the rows; the function counts them in
  ``OutcomeRowsFailed``.
- ``inferctl query --embedded`` and the tools' ``--engine duckdb`` answer from those rows.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from inferctl import cli
from inferctl.emulator.stack import EmbeddedStack, embedded_stack, write_state
from inferctl.samples import demo_samples
from inferctl.scenarios.demo.run import demo_config, demo_models
from inferctl.stack import tables, uploads
from inferctl.stack.target import from_outputs
from tests.support.logs import settled_results

BROKEN = {"broken/not-an-image.jpg": b"plain text, not pixels\n"}


class StreamCalls:
    """Every PutRecordBatch the function makes (before botocore sends it), and refusals on demand: the first
    ``refuse`` calls answer with every record refused, as Firehose does when it throttles."""

    def __init__(self, refuse: int = 0) -> None:
        self.records: list[int] = []
        self.refuse = refuse
        self.refused = 0
        self._lock = threading.Lock()

    def counted(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        with self._lock:  # the API's parameters: what the function asked to put
            self.records.append(len(params["Records"]))
            context["refuse_records"] = len(params["Records"]) if self.refused < self.refuse else 0
            self.refused += 1 if context["refuse_records"] else 0

    def __call__(self, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        refused = context.get("refuse_records", 0)
        if not refused:
            return None
        answers = [{"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "slow down"} for _ in range(refused)]
        response = AWSResponse("https://firehose.local", 200, {}, io.BytesIO(b""))  # type: ignore[arg-type]
        return response, {"FailedPutCount": refused, "RequestResponses": answers, "Encrypted": False}

    def install(self) -> None:
        boto3.setup_default_session()
        events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
        events.register("before-parameter-build.firehose.PutRecordBatch", self.counted)
        events.register("before-call.firehose.PutRecordBatch", self)  # type: ignore[arg-type]

    def uninstall(self) -> None:
        if boto3.DEFAULT_SESSION is not None:
            events = boto3.DEFAULT_SESSION.events
            events.unregister("before-parameter-build.firehose.PutRecordBatch", self.counted)
            events.unregister("before-call.firehose.PutRecordBatch", self)  # type: ignore[arg-type]


@contextlib.contextmanager
def run(
    calls: StreamCalls, folder: Path, items: list[tuple[str, bytes]], capture: bool = True
) -> Iterator[tuple[EmbeddedStack, Any]]:
    """The embedded stack with ``items`` uploaded and settled; ``capture``: the function's prints (its metrics) go to
    its log, as on Lambda, instead of this process's stdout (where the CLI's answers go)."""
    # A refused record comes back after a second (retryDelayMaxSeconds); five receives before the DLQ.
    config = demo_config({"lambdaTimeoutSeconds": 10, "maxReceiveCount": 5, "retryDelayMaxSeconds": 1, "batchSize": 5})
    calls.install()
    try:
        with embedded_stack(config, demo_models(), log_path=folder / "lambda.log", capture_stdout=capture) as stack:
            state = folder / "embedded.json"
            write_state(stack, state)  # the table is copied beside it, where `inferctl query --embedded` looks
            target = from_outputs(stack.session, json.loads(state.read_text(encoding="utf-8")), None, "embedded")
            uploads.upload_many(target, items, progress=False)
            keys = [stack.config.input_prefix + key for key, _ in items]
            found = uploads.wait_for(target, keys, timeout=90, progress=False)
            yield stack, (target, found)
    finally:
        calls.uninstall()


@pytest.fixture(scope="module")
def items() -> list[tuple[str, bytes]]:
    return [(sample.key, sample.data) for sample in demo_samples()] + list(BROKEN.items())


def s3_documents(stack: EmbeddedStack, keys: list[str]) -> dict[str, str]:
    s3 = stack.client("s3")
    documents = {}
    for key in keys:
        body = s3.get_object(Bucket=stack.resources.bucket, Key=key + ".json")["Body"].read()
        documents[key] = json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":"))
    return documents


def rows_failed(log: Path) -> int:
    """The function's OutcomeRowsFailed metric, summed over its log (EMF lines)."""
    lines = log.read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines if '"OutcomeRowsFailed"' in line and line.startswith("{")]
    values = [entry["OutcomeRowsFailed"] for entry in entries]
    return int(sum(sum(v) if isinstance(v, list) else v for v in values))


def test_each_outcome_is_a_row_sent_in_one_call_per_batch(tmp_path, items):
    calls = StreamCalls()
    with run(calls, tmp_path, items) as (stack, (target, found)):
        keys = sorted(found)
        assert {state.state for state in found.values()} == {"ok", "error"}
        table = tables.wait_for_rows(target, keys, timeout=90)  # a limit for a failure, not a pace
        batches = stack.trigger.stats.batches
        current = dict(table.query("SELECT key, document FROM current_outcomes").rows)
        assert current == s3_documents(stack, keys)
        # one row per outcome, and once more for each row the stream did not take in time (a busy machine)
        assert sum(calls.records) == len(keys) + rows_failed(tmp_path / "lambda.log")
        # never more than one call a batch, but a batch at risk (a message received before: on a busy machine, a
        # record that ran out of time) sends each record's row before deleting its message
        at_risk = [
            json.loads(line)
            for line in (tmp_path / "lambda.log").read_text(encoding="utf-8").splitlines()
            if "Batch at risk" in line and line.startswith("{")
        ]
        assert len(calls.records) <= batches + sum(len(entry.get("message_ids", [])) for entry in at_risk)
        statuses = dict(table.query("SELECT status, count(*) FROM current_outcomes GROUP BY status").rows)
        assert statuses == Counter(state.state for state in found.values())


def test_a_refusing_stream_loses_no_row_and_writes_no_document_twice(tmp_path, items):
    calls = StreamCalls(refuse=2)
    with run(calls, tmp_path, items) as (stack, (target, found)):
        keys = sorted(found)
        table = tables.wait_for_rows(target, keys, timeout=90)
        assert calls.refused == 2
        assert dict(table.query("SELECT key, document FROM current_outcomes").rows) == s3_documents(stack, keys)
        s3 = stack.client("s3")
        for key in keys:  # each document written once: the redelivery sent only its row
            versions = s3.list_object_versions(Bucket=stack.resources.bucket, Prefix=key + ".json")["Versions"]
            assert [v["Key"] for v in versions] == [key + ".json"]
        log = tmp_path / "lambda.log"
        written = settled_results(log, 0, keys[:1])
        assert max(written.values()) == 1
        assert rows_failed(log) >= 2
        duplicates = [
            json.loads(line)
            for line in log.read_text(encoding="utf-8").splitlines()
            if "Duplicate notification" in line
        ]
        assert duplicates, "the refused records came back and were settled as duplicates"


def test_the_cli_asks_the_embedded_table(tmp_path, items, capsys):
    calls = StreamCalls()
    with run(calls, tmp_path, items, capture=False) as (stack, (target, found)):
        tables.wait_for_rows(target, sorted(found), timeout=30)
        capsys.readouterr()  # the function's own prints
        state = str(tmp_path / "embedded.json")
        assert cli.main(["query", "--embedded", state, "--format", "json", "--named", "error-codes"]) == 0
        answer = json.loads(capsys.readouterr().out)
        codes: dict[str, list[str]] = {}  # what S3 holds: each error document's code (the samples' own broken
        for key, image in found.items():  # ones and BROKEN)
            if image.state == "error" and image.document is not None:
                codes.setdefault(image.document["error"]["code"], []).append(key)
        assert stack.config.input_prefix + "broken/not-an-image.jpg" in codes.get("IMAGE_UNREADABLE", [])
        ordered = sorted(codes.items(), key=lambda item: (-len(item[1]), item[0]))
        assert answer == [{"error_code": c, "images": len(k), "example": min(k)} for c, k in ordered]
        capsys.readouterr()
        assert cli.main(["audit", "--embedded", state, "--engine", "duckdb", "--format", "json"]) == 0
        captured = capsys.readouterr()
        assert json.loads(captured.out)["states"] == Counter(state.state for state in found.values())
        assert "engine: duckdb: asked for (--engine duckdb)" in captured.err
        assert cli.main(["query", "--embedded", state, "SELECT nope FROM current_outcomes"]) == 2
        assert capsys.readouterr().err.count("\n") == 1
    # after the stack is gone (`inferctl serve` removes its state file), what it left still answers
    (tmp_path / "embedded.json").unlink()
    left = str(tmp_path / "embedded.json")
    assert cli.main(["query", "--embedded", left, "SELECT count(*) FROM current_outcomes"]) == 0
    captured = capsys.readouterr()
    assert "the embedded stack is not running" in captured.err
    assert int(captured.out.splitlines()[-1]) == len(items)
