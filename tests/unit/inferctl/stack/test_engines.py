"""The two engines under the outcome table. DuckDB: copies only what is new, starts afresh for another stack,
merges a day's small files without losing or doubling a row, finishes or undoes an interrupted step, and reads
nothing it would have to download. Athena (botocore's Stubber): the query goes to the stack's workgroup and
database with ``current_outcomes`` supplied, the answer is typed, what it scanned is priced, a refusal is Athena's
own one line, and Ctrl-C stops the query in Athena too."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from inferctl.pricing import athena_query_cost
from inferctl.stack import engines, tables
from inferctl.stack.dialect import QueryError
from inferctl.stack.engines import AthenaPlace, AthenaTable, LocalTable
from inferctl.stack.errors import UsageError
from inferctl.stack.target import Target
from lambdas.contract import outcome_table
from tests.support.population import MemoryS3, Stored

PREFIX = "rows/"
ROOT = Path(__file__).resolve().parents[4]


def policy_actions(name: str) -> set[str]:
    document = json.loads((ROOT / "iam" / name).read_text(encoding="utf-8"))
    return {action for statement in document["Statement"] for action in statement["Action"]}


def row(key: str, written: str, status: str = "ok", sequencer: str | None = None) -> bytes:
    values = dict.fromkeys(outcome_table.COLUMN_NAMES)
    values.update(bucket="b", key=key, written_at=written, status=status, sequencer=sequencer, labels=[])
    return outcome_table.encode(values)


def deliver(s3: MemoryS3, name: str, *rows: bytes, hour: str = "2026/11/24/09") -> None:
    s3.put("outcomes", f"{PREFIX}{hour}/outcomes-1-{name}", Stored(b"".join(rows), name, datetime.now(UTC)))


def count(table: LocalTable, text: str = "SELECT count(*) FROM outcomes") -> int:
    return int(table.query(text).rows[0][0])


def test_a_sync_copies_only_new_objects_and_another_stack_starts_afresh(tmp_path):
    s3 = MemoryS3()
    deliver(s3, "a", row("k1", "2026-11-24 09:00:00.000"), row("k2", "2026-11-24 09:00:00.100"))
    table = LocalTable(tmp_path)
    first = table.sync(s3, "outcomes", PREFIX, "stack-1")
    assert (first.objects, first.rows) == (1, 2)
    deliver(s3, "b", row("k1", "2026-11-24 09:05:00.000", "error"))
    second = table.sync(s3, "outcomes", PREFIX, "stack-1")
    assert (second.objects, second.rows) == (1, 1)
    assert count(table) == 3
    assert table.query("SELECT key, status, day FROM current_outcomes ORDER BY key").rows == [
        ("k1", "error", "2026-11-24"),
        ("k2", "ok", "2026-11-24"),
    ]
    assert table.sync(s3, "outcomes", PREFIX, "stack-1").objects == 0
    again = table.sync(s3, "outcomes", PREFIX, "stack-2")  # a new demo: its rows only
    assert (again.objects, count(table)) == (2, 3)


def test_the_current_row_is_the_last_written_then_the_greater_right_padded_sequencer(tmp_path):
    s3 = MemoryS3()
    same = "2026-11-24 09:00:00.000"
    deliver(
        s3,
        "a",
        row("k", same, "error", sequencer="0A"),
        row("k", same, "ok", sequencer="0a1"),  # 0A10... > 0A00...: later, whatever the case
        row("j", "2026-11-24 09:00:00.002", "error", sequencer="FF"),
        row("j", "2026-11-24 09:00:00.003", "ok", sequencer="01"),  # written later wins, whatever its sequencer
    )
    table = LocalTable(tmp_path)
    table.sync(s3, "outcomes", PREFIX, "s")
    assert table.query("SELECT key, status FROM current_outcomes ORDER BY key").rows == [("j", "ok"), ("k", "ok")]


def test_a_days_small_files_are_merged_into_one_without_losing_or_doubling_a_row(tmp_path):
    s3 = MemoryS3()
    table = LocalTable(tmp_path)
    for index in range(engines.MERGE_AT + 2):
        deliver(s3, f"o{index:02d}", row(f"k{index}", f"2026-11-24 09:00:{index:02d}.000"))
        deliver(s3, f"p{index:02d}", row(f"j{index}", f"2026-11-25 09:00:{index:02d}.000"), hour="2026/11/25/09")
        table.sync(s3, "outcomes", PREFIX, "s")
    days = sorted(path.name for path in table.parquet.iterdir())
    assert days == ["day=2026-11-24", "day=2026-11-25"]
    for day in days:
        assert len(list((table.parquet / day).glob("*.parquet"))) < engines.MERGE_AT
    assert count(table) == 2 * (engines.MERGE_AT + 2)
    assert count(table, "SELECT count(DISTINCT key) FROM outcomes") == 2 * (engines.MERGE_AT + 2)


def test_an_interrupted_compaction_is_undone_and_its_objects_copied_again(tmp_path):
    s3 = MemoryS3()
    deliver(s3, "a", row("k1", "2026-11-24 09:00:00.000"))
    table = LocalTable(tmp_path)
    table.sync(s3, "outcomes", PREFIX, "s")
    # as if a second compaction wrote its file and stopped before recording its objects
    part = next(table.parquet.rglob("*.parquet"))
    orphan = part.with_name("part-deadbeef0000-1.parquet")
    orphan.write_bytes(part.read_bytes())
    (tmp_path / engines.JOURNAL).write_text(json.dumps({"compact": "deadbeef0000", "keys": ["x"]}))
    assert count(LocalTable(tmp_path)) == 1  # opening the folder finishes the journal: the orphan is gone
    assert not orphan.exists()


def test_an_interrupted_merge_is_finished_never_left_with_both(tmp_path):
    s3 = MemoryS3()
    deliver(s3, "a", row("k1", "2026-11-24 09:00:00.000"))
    table = LocalTable(tmp_path)
    table.sync(s3, "outcomes", PREFIX, "s")
    part = next(table.parquet.rglob("*.parquet"))
    merged = part.with_name("merged-0001.parquet")
    temporary = merged.with_suffix(".tmp")
    temporary.write_bytes(part.read_bytes())
    journal = {"merge": str(merged), "temporary": str(temporary), "old": [str(part)]}
    (tmp_path / engines.JOURNAL).write_text(json.dumps(journal))
    reopened = LocalTable(tmp_path)
    assert (merged.exists(), part.exists(), count(reopened)) == (True, False, 1)


def test_no_extension_is_installed_or_loaded_and_a_wrong_query_is_duckdbs_line(tmp_path):
    table = LocalTable(tmp_path)
    assert count(table) == 0  # no rows yet: the views exist, empty
    with table.connection() as connection:
        settings = dict(
            connection.execute("SELECT name, value FROM duckdb_settings() WHERE name LIKE 'auto%'").fetchall()
        )
        assert settings["autoinstall_known_extensions"] == "false"
        assert settings["autoload_known_extensions"] == "false"
        with pytest.raises(Exception, match="httpfs"):
            connection.execute("SELECT * FROM read_parquet('https://example.com/x.parquet')")
    with pytest.raises(QueryError, match=r"Referenced column \"nope\" not found") as raised:
        table.query("SELECT nope FROM current_outcomes")
    assert "\n" not in str(raised.value)


# --- Athena --------------------------------------------------------------------------------------------------


PLACE = AthenaPlace("stack-outcomes", "stack_outcomes")


def athena() -> tuple[Any, Stubber]:
    client = boto3.client("athena", region_name="us-east-1")
    return client, Stubber(client)


def execution(state: str, **extra: Any) -> dict[str, Any]:
    return {
        "QueryExecution": {"QueryExecutionId": "q1", "Status": {"State": state, **extra.pop("status", {})}, **extra}
    }


def test_a_query_runs_in_the_stacks_workgroup_with_current_outcomes_and_is_typed_and_priced():
    client, stubber = athena()
    text = "SELECT status, count(*) AS n, avg(seconds) AS s FROM current_outcomes GROUP BY status"

    stubber.add_response(
        "start_query_execution",
        {"QueryExecutionId": "q1"},
        {"QueryString": ANY, "WorkGroup": "stack-outcomes", "QueryExecutionContext": {"Database": "stack_outcomes"}},
    )
    stubber.add_response("get_query_execution", execution("RUNNING"), {"QueryExecutionId": "q1"})
    stubber.add_response(
        "get_query_execution",
        execution(
            "SUCCEEDED",
            StatementType="DML",
            Statistics={"DataScannedInBytes": 3 * 1024**3, "EngineExecutionTimeInMillis": 1250},
        ),
        {"QueryExecutionId": "q1"},
    )
    columns = [("status", "varchar"), ("n", "bigint"), ("s", "double")]
    stubber.add_response(
        "get_query_results",
        {
            "ResultSet": {
                "Rows": [
                    {"Data": [{"VarCharValue": name} for name, _ in columns]},
                    {"Data": [{"VarCharValue": "ok"}, {"VarCharValue": "12"}, {"VarCharValue": "1.5"}]},
                    {"Data": [{"VarCharValue": "error"}, {"VarCharValue": "3"}, {}]},
                ],
                "ResultSetMetadata": {"ColumnInfo": [{"Name": n, "Type": t} for n, t in columns]},
            }
        },
        {"QueryExecutionId": "q1"},
    )
    sent: list[str] = []
    client.meta.events.register(
        "provide-client-params.athena.StartQueryExecution", lambda params, **_: sent.append(params["QueryString"])
    )
    operations: set[str] = set()
    client.meta.events.register(
        "before-parameter-build.athena", lambda model, **_: operations.add(f"athena:{model.name}")
    )
    with stubber:
        answer = AthenaTable(client, PLACE, sleep=lambda seconds: None).query(text)
    assert operations  # the calls were seen: what follows proves something
    assert operations <= policy_actions("operator-query.json")  # what iam/ grants for `query`
    assert sent[0].startswith("WITH current_outcomes AS (")
    assert answer.rows == [("ok", 12, 1.5), ("error", 3, None)]
    assert answer.columns == ["status", "n", "s"]
    assert (answer.scanned_bytes, answer.seconds) == (3 * 1024**3, 1.25)
    assert answer.cost_usd == pytest.approx(3 / 1024 * 5.0)
    assert "3,072.0 MB scanned" in answer.summary()


def test_a_small_query_is_billed_ten_megabytes_and_athenas_refusal_is_its_own_line():
    assert athena_query_cost(1) == pytest.approx(10 / 1024 / 1024 * 5.0)
    client, stubber = athena()
    stubber.add_response("start_query_execution", {"QueryExecutionId": "q1"})
    reason = "Query exhausted the bytes scanned limit of the workgroup (scan limit exceeded)"
    stubber.add_response("get_query_execution", execution("FAILED", status={"StateChangeReason": reason}))
    with stubber, pytest.raises(QueryError, match="athenaScanLimitMb") as raised:
        AthenaTable(client, PLACE, sleep=lambda seconds: None).query("SELECT * FROM outcomes")
    assert str(raised.value).startswith(reason)


def test_sql_athena_cannot_read_is_refused_before_anything_is_sent():
    client, stubber = athena()
    with stubber, pytest.raises(QueryError, match=r"line 1"):
        AthenaTable(client, PLACE).query("SELECT FROM WHERE (")
    stubber.assert_no_pending_responses()


def test_ctrl_c_stops_the_query_in_athena_too():
    client, stubber = athena()
    stubber.add_response("start_query_execution", {"QueryExecutionId": "q1"})
    stubber.add_response("get_query_execution", execution("RUNNING"))
    stubber.add_response("stop_query_execution", {}, {"QueryExecutionId": "q1"})

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    with stubber, pytest.raises(KeyboardInterrupt):
        AthenaTable(client, PLACE, sleep=interrupted).query("SELECT 1")
    stubber.assert_no_pending_responses()


# --- which engine ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counted(Target):
    s3: Any = None

    def client(self, service: str) -> Any:
        assert service == "s3"
        return self.s3


def target(objects: int, **outputs: Any) -> Counted:
    s3 = MemoryS3()
    for index in range(objects):
        s3.put("images", f"test_images/{index:06d}.jpg", Stored(b"x", "e", datetime.now(UTC)))
    return Counted(None, "images", "test_images/", "", "", None, outputs=outputs, s3=s3)


def test_auto_scans_below_ten_thousand_objects_and_says_why():
    chosen = tables.open_source(target(30, OutcomeBucketName="o"), "auto")
    assert chosen.table is None
    assert chosen.reason.startswith("scan: 30 objects under the prefix")
    assert tables.open_source(target(30), "auto").reason == "scan: this stack has no outcome table"


def test_an_engine_the_stack_cannot_run_is_one_line():
    with pytest.raises(UsageError, match="deploy with outcomeTable true"):
        tables.open_source(target(1), "athena")
    with pytest.raises(UsageError, match="--engine athena"):
        tables.open_source(target(1, OutcomeWorkgroup="w", OutcomeDatabase="d"), "duckdb")
    assert tables.count_objects(target(2500), "test_images/", 1000) >= 1000  # stops counting at the limit


def test_the_embedded_table_is_beside_the_state_file(tmp_path: Path):
    assert tables.table_folder(target(0, OutcomeTableFolder=str(tmp_path))) == tmp_path
    assert tables.table_folder(target(0)) == tables.DEFAULT_TABLE_FOLDER


def test_both_rewrites_of_unnest_give_trinos_answers():
    """Trino expands each label's fields; DuckDB gets the struct kept whole (``l.name``) or, under ``SELECT *``, the
    lateral subquery. Both give the rows Trino would, filtered, ordered and grouped on the fields."""
    import duckdb

    from inferctl.stack import dialect

    fields = ", ".join(outcome_table.LABEL_FIELDS)
    connection = duckdb.connect(":memory:")
    connection.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES "
        "('a', [{'name': 'sun', 'confidence': 90.0, 'accepted': true, 'threshold': 50.0, 'box': NULL},"
        "       {'name': 'sun', 'confidence': 40.0, 'accepted': false, 'threshold': 50.0, 'box': NULL}]),"
        "('b', [{'name': 'bee', 'confidence': 70.0, 'accepted': true, 'threshold': 50.0, 'box': NULL}]),"
        "('c', [])) AS v(key, labels)"
    )
    in_place = f"""SELECT r.key, l.name, l.confidence FROM t AS r CROSS JOIN UNNEST(r.labels) AS l ({fields})
WHERE l.confidence > 50 OR NOT l.accepted ORDER BY l.confidence DESC"""
    assert "LATERAL" not in dialect.for_duckdb(in_place)
    assert connection.execute(dialect.for_duckdb(in_place)).fetchall() == [
        ("a", "sun", 90.0),
        ("b", "bee", 70.0),
        ("a", "sun", 40.0),
    ]
    grouped = f"""SELECT l.name, count(*), count_if(l.accepted) FROM t CROSS JOIN UNNEST(labels) AS l ({fields})
GROUP BY l.name ORDER BY l.name"""
    assert connection.execute(dialect.for_duckdb(grouped)).fetchall() == [("bee", 1, 1), ("sun", 2, 1)]
    starred = f"SELECT * FROM t CROSS JOIN UNNEST(t.labels) AS l ({fields}) WHERE l.name = 'bee'"
    translated = dialect.for_duckdb(starred)
    assert "LATERAL" in translated  # the fields as columns, as Trino shows them
    (row,) = connection.execute(translated).fetchall()
    assert row[0] == "b"
    assert row[2:] == ("bee", 70.0, True, 50.0, None)
