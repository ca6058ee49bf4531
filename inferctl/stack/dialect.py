"""One SQL text for two engines: queries are written in Athena's dialect (Trino, engine version 3) and run on DuckDB
for the embedded stack, transpiled with sqlglot (a maintained transpiler with both dialects).

sqlglot translates functions and syntax; one difference it leaves is semantic: Trino's ``CROSS JOIN UNNEST(xs) AS
l (a, b)`` over an array of rows expands each row's fields into columns, while DuckDB's binds the whole struct to
``a``. ``for_duckdb`` rewrites that join so that ``l.a`` reads the struct's field ``a`` (DuckDB's own unnest of the
struct under the name ``l``, or, where a query selects ``*``, a lateral subquery that selects the fields by name), so
the alias list must name the struct's fields (``outcome_table.LABEL_FIELDS``): the table's own queries do, and a
test checks them.

``current_outcomes`` is not a catalog view in Athena (a view cannot be created from the template): ``with_current``
adds it as a WITH clause to any query that names it.

sqlglot is imported by the functions that use it: the CLI's help and its usage errors never load it (about a tenth of
a second).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lambdas.contract.outcome_table import CURRENT, CURRENT_SQL

if TYPE_CHECKING:
    from sqlglot import exp

ATHENA, DUCKDB = "trino", "duckdb"


class QueryError(ValueError):
    """A query one of the engines cannot take: the message is the parser's, or the engine's."""


def parse(sql: str) -> exp.Expr:
    """The statement in Athena's dialect; QueryError with the parser's own message when it is not SQL it reads."""
    import sqlglot
    from sqlglot.errors import ParseError

    try:
        statements = [statement for statement in sqlglot.parse(sql, read=ATHENA) if statement is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" (line {first.get('line')}, column {first.get('col')})" if first else ""
        raise QueryError(f"{first.get('description') or exc}{where}") from None
    if len(statements) != 1:
        raise QueryError(f"expected one statement, got {len(statements)}")
    return statements[0]


def with_current(sql: str) -> str:
    """The query, with ``current_outcomes`` defined as a WITH clause when it names it (in Athena's dialect)."""
    from sqlglot import exp

    tree = parse(sql)
    names = {table.name.lower() for table in tree.find_all(exp.Table)}
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    if CURRENT not in names or CURRENT in ctes or not isinstance(tree, exp.Query):
        return sql
    current = exp.CTE(this=parse(CURRENT_SQL), alias=exp.TableAlias(this=exp.to_identifier(CURRENT)))
    clause = tree.args.get("with_") or tree.args.get("with")
    if isinstance(clause, exp.With):
        clause.set("expressions", [current, *clause.expressions])  # first: the query's own clauses may name it
    else:
        tree.set("with_" if "with_" in tree.arg_types else "with", exp.With(expressions=[current]))
    return str(tree.sql(dialect=ATHENA, pretty=True))


def for_athena(sql: str) -> str:
    """What the tool sends to Athena: the query, parsed (refused here when Athena's dialect cannot read it) and
    with ``current_outcomes`` supplied."""
    return with_current(sql)


def for_duckdb(sql: str) -> str:
    """The same query in DuckDB's dialect (``current_outcomes`` is a view there)."""
    from sqlglot import exp

    tree = parse(sql)
    for unnest in list(tree.find_all(exp.Unnest)):
        if not _unnested_in_place(unnest):
            _lateral_fields(unnest)
    return str(tree.sql(dialect=DUCKDB))


def _unnested_in_place(unnest: exp.Unnest) -> bool:
    """``FROM t AS r CROSS JOIN UNNEST(r.xs) AS l (a, b)`` as ``FROM (SELECT r.*, UNNEST(r.xs) AS l FROM t AS r) AS
    r``: each row's struct stays whole under the name ``l``, so ``l.a`` reads its field. DuckDB runs this as its own
    unnest, several times faster than the lateral join where a filter or an ORDER BY sits on the fields (a million
    labels filtered: 0.1 s against 0.95 s). Only where the join follows the FROM directly and nothing selects ``*``
    (which would show the struct instead of its fields); otherwise the lateral join (``_lateral_fields``)."""
    import sqlglot
    from sqlglot import exp

    alias = unnest.args.get("alias")
    join = unnest.parent
    select = join.parent if isinstance(join, exp.Join) else None
    if not isinstance(alias, exp.TableAlias) or not alias.columns or len(unnest.expressions) != 1:
        return False
    if not isinstance(select, exp.Select) or not select.args.get("joins") or select.args["joins"][0] is not join:
        return False
    starred = any(isinstance(e, exp.Star) or isinstance(e.args.get("this"), exp.Star) for e in select.expressions)
    if join.args.get("on") or starred:
        return False
    source = select.args.get("from_")
    if not isinstance(source, exp.From) or not isinstance(source.this, exp.Table | exp.Subquery):
        return False
    name = source.this.alias_or_name
    array = unnest.expressions[0].sql(dialect=DUCKDB)
    inner = f'SELECT "{name}".*, UNNEST({array}) AS "{alias.name}" FROM {source.this.sql(dialect=DUCKDB)}'  # noqa: S608
    rewritten = sqlglot.parse_one(f'SELECT 1 FROM ({inner}) AS "{name}"', read=DUCKDB)  # noqa: S608 - parsed SQL
    select.set("from_", rewritten.args["from_"])
    join.pop()
    return True


def _lateral_fields(unnest: exp.Unnest) -> None:
    """``CROSS JOIN UNNEST(xs) AS l (a, b)`` (Trino: one column per row field) as DuckDB's
    ``CROSS JOIN LATERAL (SELECT u.s.a AS a, u.s.b AS b FROM (SELECT UNNEST(xs) AS s) AS u) AS l``."""
    import sqlglot
    from sqlglot import exp

    alias = unnest.args.get("alias")
    if not isinstance(alias, exp.TableAlias) or not alias.columns or len(unnest.expressions) != 1:
        return
    if not isinstance(unnest.parent, exp.Join):
        return
    fields = [column.name for column in alias.columns]
    array = unnest.expressions[0].sql(dialect=DUCKDB)
    selected = ", ".join(f'u.s."{name}" AS "{name}"' for name in fields)
    rewritten = f"SELECT * FROM t CROSS JOIN LATERAL (SELECT {selected} FROM (SELECT UNNEST({array}) AS s) AS u) AS "  # noqa: S608
    lateral = sqlglot.parse_one(rewritten + f'"{alias.name}"', read=DUCKDB)  # a rewrite of SQL already parsed
    join = lateral.find(exp.Join)
    assert join is not None
    unnest.parent.replace(join)
