"""The SQL data source is read-only by construction, on real SQLite and PostgreSQL.

Each layer is tested on its own: the statement check (sqlglot, per dialect), the
driver allow-list, the bounds on memory (rows and bytes), the session reset
before a connection goes back to the pool, and the read-only role that
docs/sql-data-source.md asks operators to use (its SQL block is run here as
written).
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from ductwork.clients import sql as sql_module
from ductwork.clients.sql import SqlConnections, _run_read_only, check_read_only
from ductwork.engine.graph import validate
from ductwork.models import WorkflowDefinition
from ductwork.nodes.base import NodeError
from ductwork.nodes.registry import REGISTRY
from ductwork.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs" / "sql-data-source.md"
PG_DRIVERS = ["postgresql", "postgresql+psycopg"]

# The statement check ---------------------------------------------------------------------


@pytest.mark.parametrize("dialect", [None, "postgresql", "sqlite"])
def test_backslash_before_a_quote_cannot_hide_more_statements(dialect: str | None) -> None:
    # PostgreSQL and SQLite read '\' as a one-character string, so this is three
    # statements and a comment; a parser that treats \' as an escaped quote sees one
    # SELECT of a long string ending in the comment.
    with pytest.raises(ValueError, match="3 statements"):
        smuggled = "SELECT '\\'; COMMIT; DELETE FROM t; -- '"
        check_read_only(smuggled, dialect) if dialect else check_read_only(smuggled)


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT pg_advisory_lock(1)", "pg_advisory_lock() is not allowed: it takes a lock"),
        ("SELECT pg_try_advisory_xact_lock(1, 2)", "pg_try_advisory_xact_lock()"),
        ("SELECT PG_ADVISORY_LOCK_SHARED(1)", "pg_advisory_lock_shared()"),
        ("SELECT pg_terminate_backend(42)", "acts on other sessions"),
        ("SELECT pg_cancel_backend(42)", "pg_cancel_backend()"),
        ("SELECT pg_catalog.pg_read_file('PG_VERSION')", "reads or writes files"),
        ("SELECT pg_read_binary_file('PG_VERSION')", "pg_read_binary_file()"),
        ("SELECT * FROM pg_ls_dir('.')", "pg_ls_dir()"),
        ("SELECT pg_stat_file('PG_VERSION')", "pg_stat_file()"),
        ("SELECT lo_import('/etc/passwd')", "lo_import()"),
        ("SELECT lo_export(1, '/tmp/x')", "lo_export()"),
        ("SELECT * FROM dblink('host=x', 'DELETE FROM t') AS t(a int)", "dblink()"),
        ("SELECT set_config('work_mem', '1GB', false)", "changes settings"),
        ("SELECT pg_sleep(3600)", "pg_sleep()"),
        ("SELECT nextval('orders_id_seq')", "changes a sequence"),
        ("SELECT setval('orders_id_seq', 1)", "setval()"),
        ("SELECT txid_current()", "txid_current()"),
        ("SELECT pg_notify('ch', 'x')", "pg_notify()"),
        ("SELECT query_to_xml('SELECT pg_advisory_lock(1)', true, true, '')", "own"),
        ("SELECT id FROM (SELECT 1 AS id, pg_advisory_lock(7)) AS hidden", "pg_advisory_lock"),
        ("SELECT load_extension('/tmp/evil.so')", "loads native code"),
        ("SELECT * FROM t FOR UPDATE", "FOR UPDATE / FOR SHARE locks rows"),
        ("SELECT * FROM t FOR NO KEY UPDATE", "locks rows"),
        ("SELECT * FROM t FOR SHARE", "locks rows"),
        ("SELECT * INTO backup FROM t", "SELECT ... INTO creates a table"),
        ("WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone", "DELETE changes data"),
        ("COPY t TO '/tmp/t.csv'", "not COPY"),
        ("EXPLAIN ANALYZE DELETE FROM t", "not EXPLAIN"),
        ("PRAGMA journal_mode = DELETE", "not PRAGMA"),
        ("ATTACH DATABASE '/tmp/x.db' AS x", "not ATTACH"),
        ("SELECT 1; SELECT 2", "2 statements"),
        ("", "empty"),
        ("SELECT 'unterminated", "does not parse"),
        ("SELECT " + "(" * 3000 + "1" + ")" * 3000, "nested too deeply"),
        ("SELECT 1 AS a" + ", 1" * 10000, "over the 20000 this check reads"),
    ],
)
def test_side_effects_are_refused_with_the_reason(sql: str, named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        check_read_only(sql)


def test_ordinary_selects_pass_in_their_dialect() -> None:
    for sql in [
        "SELECT 'it''s' AS s, lower(name) FROM t WHERE id IN :ids",
        "SELECT 1 INTERSECT SELECT 1",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) "
        "SELECT i FROM n",
        "SELECT '\\' AS backslash",
        "SELECT count(*) AS nextval FROM t",  # a column may be named like a function
    ]:
        check_read_only(sql, "postgresql")
        check_read_only(sql, "sqlite")
    check_read_only("SELECT $$a; DELETE FROM t$$ AS s, x::int FROM t", "postgresql")


def test_a_saved_workflow_names_config_query_and_why() -> None:
    definition = WorkflowDefinition.model_validate(
        {
            "name": "report",
            "nodes": [
                {"id": "start", "type": "start", "config": {}},
                {
                    "id": "orders",
                    "type": "data-source",
                    "config": {
                        "source_type": "database",
                        "connection": "pg",
                        "query": "SELECT pg_sleep(60)",
                    },
                },
            ],
            "edges": [{"from": "start", "to": "orders"}],
        }
    )
    [issue] = validate(definition, REGISTRY)
    assert (issue.node_id, issue.field) == ("orders", "config.query")
    assert issue.message.startswith("pg_sleep() is not allowed: it holds the connection")


# The driver allow-list --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "mysql+pymysql://reader@127.0.0.1/shop",
        "mssql+pyodbc://reader@dsn",
        "sqlite+aiosqlite:///shop.db",
        "postgresql+psycopg2://reader@127.0.0.1/shop",
        "oracle://reader@127.0.0.1/shop",
    ],
)
def test_unsupported_drivers_are_refused_at_startup(url: str) -> None:
    scheme = url.split("://")[0]
    with pytest.raises(ValueError) as caught:
        SqlConnections(Settings(sql_connections={"reports": url}))
    message = str(caught.value)
    assert "DUCTWORK_SQL_CONNECTIONS: connection 'reports'" in message
    assert f"driver {scheme!r} is not supported" in message
    assert "reader" not in message  # the URL's user (or password) is never echoed


def test_supported_drivers_are_accepted(tmp_path: Path) -> None:
    connections = SqlConnections(
        Settings(
            sql_connections={
                "file": f"sqlite:///{tmp_path / 'a.db'}",
                "pysqlite": f"sqlite+pysqlite:///{tmp_path / 'b.db'}",
                "pg": "postgresql://reader@127.0.0.1/shop",
                "asyncpg": "postgresql+asyncpg://reader@127.0.0.1/shop",
                "psycopg": "postgresql+psycopg://reader@127.0.0.1/shop",
            }
        )
    )
    assert connections.names == ["asyncpg", "file", "pg", "psycopg", "pysqlite"]


# PostgreSQL: a fresh database per test ----------------------------------------------------


async def pg_execute(url: str, sql: str, *args: Any) -> Any:
    """Run SQL on a connection of its own (not ductwork's pool); with `args`, return the value."""
    connection = await asyncpg.connect(url, timeout=5)
    try:
        if not args:  # the simple protocol, which takes several statements
            await connection.execute(sql)
        return await connection.fetchval(sql, *args) if args else None
    finally:
        await connection.close()


@pytest.fixture
async def pg_url(store_url_factory: Callable[[str], str]) -> str:
    """A fresh PostgreSQL database with a small `orders` table."""
    url = store_url_factory("postgresql")
    await pg_execute(
        url,
        "CREATE TABLE orders (id serial PRIMARY KEY, item text); "
        "INSERT INTO orders (item) VALUES ('tea'), ('cake')",
    )
    return url


@pytest.fixture(params=PG_DRIVERS)
async def pg_sql(request: pytest.FixtureRequest, pg_url: str) -> AsyncIterator[SqlConnections]:
    """SqlConnections with `pg` on the per-test database, through each PostgreSQL driver."""
    url = make_url(pg_url).set(drivername=request.param)
    sql = SqlConnections(
        Settings(
            sql_connections={"pg": url.render_as_string(hide_password=False)},
            max_output_bytes=1_000_000,
        )
    )
    yield sql
    await sql.close()


async def run_unchecked(sql: SqlConnections, query: str, **kw: Any) -> Any:
    """Run `query` past the statement check, to test the layers behind it on their own."""
    engine = cast(Any, sql)._engine("pg")

    def work(conn: Connection) -> Any:
        return _run_read_only(conn, query, kw.pop("params", {}), 10, 5.0, **kw)

    if isinstance(engine, AsyncEngine):
        async with engine.connect() as conn:
            return await conn.run_sync(work)
    with engine.connect() as sync_conn:
        return work(sync_conn)


async def advisory_locks(url: str, key: int) -> int:
    count: int = await pg_execute(
        url,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1",
        key,
    )
    return count


@pytest.mark.postgres
async def test_advisory_lock_is_refused(pg_url: str, pg_sql: SqlConnections) -> None:
    with pytest.raises(NodeError, match=r"config\.query: pg_advisory_lock\(\) is not allowed"):
        await pg_sql.query("pg", "SELECT pg_advisory_lock(4242)", {}, 1)
    assert await advisory_locks(pg_url, 4242) == 0


@pytest.mark.postgres
async def test_session_state_is_reset_before_the_pool_reuses_a_connection(
    pg_url: str, pg_sql: SqlConnections
) -> None:
    # Past the statement check, a session-level advisory lock and setting would stay
    # with the pooled connection; the pool's reset hook clears both.
    await run_unchecked(pg_sql, "SELECT pg_advisory_lock(4243)")
    await run_unchecked(pg_sql, "SELECT set_config('application_name', 'leaked', false)")
    assert await advisory_locks(pg_url, 4243) == 0
    first = await pg_sql.query(
        "pg", "SELECT pg_backend_pid() AS pid, current_setting('application_name') AS app", {}
    )
    second = await pg_sql.query("pg", "SELECT pg_backend_pid() AS pid", {})
    assert first[0]["app"] != "leaked"
    assert first[0]["pid"] == second[0]["pid"]  # reset, not thrown away: still pooled


@pytest.mark.postgres
async def test_a_connection_that_cannot_be_reset_is_not_reused(
    pg_sql: SqlConnections, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await pg_sql.query("pg", "SELECT pg_backend_pid() AS pid", {})
    monkeypatch.setattr(sql_module, "_RESET_POSTGRES_SESSION", "SELECT no_such_function()")
    second = await pg_sql.query("pg", "SELECT pg_backend_pid() AS pid", {})
    monkeypatch.undo()
    third = await pg_sql.query("pg", "SELECT pg_backend_pid() AS pid", {})
    assert first == second  # the same pooled connection ran the query...
    assert third != second  # ...but failed its reset, so the pool closed it


@pytest.mark.postgres
async def test_other_sessions_cannot_be_terminated(pg_url: str, pg_sql: SqlConnections) -> None:
    victim = await asyncpg.connect(pg_url)
    try:
        with pytest.raises(NodeError, match=r"pg_terminate_backend\(\) is not allowed"):
            await pg_sql.query(
                "pg", "SELECT pg_terminate_backend(:pid)", {"pid": victim.get_server_pid()}
            )
        assert await victim.fetchval("SELECT 1") == 1
    finally:
        await victim.close()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "query",
    [
        "SELECT pg_read_file('PG_VERSION') AS v",
        "SELECT * FROM pg_ls_dir('.') AS f",
        "SELECT (pg_stat_file('PG_VERSION')).size",
    ],
)
async def test_database_server_files_are_not_readable(pg_sql: SqlConnections, query: str) -> None:
    with pytest.raises(NodeError, match="reads or writes files on the database server"):
        await pg_sql.query("pg", query, {})


@pytest.mark.postgres
async def test_a_backslash_cannot_smuggle_a_commit(pg_url: str, pg_sql: SqlConnections) -> None:
    smuggled = "SELECT '\\'; COMMIT; DELETE FROM orders; -- '"
    try:
        await pg_sql.query("pg", smuggled, {})
    except NodeError as exc:
        refused: NodeError | None = exc
    else:
        refused = None
    assert await pg_execute(pg_url, "SELECT count(*) FROM orders WHERE $1", True) == 2
    assert refused is not None
    assert str(refused).startswith("config.query: the query holds 3 statements")
    # Behind the check, the statement runs nested in ductwork's own query, where a
    # second statement is a syntax error on every driver.
    with pytest.raises(Exception, match="syntax error"):
        await run_unchecked(pg_sql, smuggled)
    assert await pg_execute(pg_url, "SELECT count(*) FROM orders WHERE $1", True) == 2


@pytest.mark.postgres
async def test_the_transaction_refuses_writes(pg_url: str, pg_sql: SqlConnections) -> None:
    with pytest.raises(Exception, match="read-only transaction"):
        await run_unchecked(pg_sql, "SELECT nextval('orders_id_seq')")
    assert await pg_execute(pg_url, "SELECT last_value FROM orders_id_seq WHERE $1", True) == 2


@pytest.mark.postgres
async def test_rows_past_max_rows_are_never_computed(pg_sql: SqlConnections) -> None:
    # Row 12 divides by zero: the query only succeeds if the server stops at
    # max_rows + 1 = 11 rows instead of producing the whole result.
    rows = await pg_sql.query(
        "pg", "SELECT g, 1 / (g - 12) AS x FROM generate_series(1, 100) AS g", {}, 10
    )
    assert [row["g"] for row in rows] == list(range(1, 11))
    assert rows.truncated


@pytest.mark.postgres
async def test_a_huge_value_fails_on_the_server(pg_sql: SqlConnections) -> None:
    with pytest.raises(NodeError) as caught:
        await pg_sql.query("pg", "SELECT repeat('x', 5000000) AS blob", {})
    message = str(caught.value)
    assert "config.query: the rows are over the node's output limit" in message
    assert "while the database was building them" in message
    assert "DUCTWORK_MAX_OUTPUT_BYTES = 1000000" in message


@pytest.mark.postgres
async def test_a_huge_stored_value_is_measured_decompressed(
    pg_url: str, pg_sql: SqlConnections
) -> None:
    # 5 MB of 'x' is stored compressed in a few kB; the guard must see 5 MB.
    await pg_execute(
        pg_url, "CREATE TABLE notes (body text); INSERT INTO notes VALUES (repeat('x', 5000000))"
    )
    stored = await pg_execute(pg_url, "SELECT pg_column_size(body) FROM notes WHERE $1", True)
    assert stored < 1_000_000
    with pytest.raises(NodeError, match="while the database was building them"):
        await pg_sql.query("pg", "SELECT body FROM notes", {})


@pytest.mark.postgres
async def test_rows_over_the_output_cap_fail_while_fetching(pg_sql: SqlConnections) -> None:
    # Each row is small, and their text stays under the server's coarse bound;
    # the running JSON count stops at the cap.
    with pytest.raises(NodeError, match=r"output limit by row \d+ \(DUCTWORK_MAX_OUTPUT"):
        await pg_sql.query(
            "pg", "SELECT repeat('x', 1200) AS a FROM generate_series(1, 1500)", {}, 1000
        )


@pytest.mark.postgres
async def test_the_wrapper_keeps_order_names_and_params(pg_sql: SqlConnections) -> None:
    rows = await pg_sql.query(
        "pg",
        "SELECT id AS n, item AS n, 1 FROM orders WHERE id IN :ids ORDER BY id DESC; -- done",
        {"ids": [1, 2]},
    )
    assert rows.columns == ["n", "n_2", "?column?"]
    assert list(rows) == [
        {"n": 2, "n_2": "cake", "?column?": 1},
        {"n": 1, "n_2": "tea", "?column?": 1},
    ]


# SQLite ------------------------------------------------------------------------------------


@pytest.fixture
async def sqlite_sql(tmp_path: Path) -> AsyncIterator[SqlConnections]:
    path = tmp_path / "numbers.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    conn.close()
    sql = SqlConnections(
        Settings(sql_connections={"lite": f"sqlite:///{path}"}, max_output_bytes=100_000)
    )
    yield sql
    await sql.close()


async def test_sqlite_refuses_to_build_a_huge_value(sqlite_sql: SqlConnections) -> None:
    with pytest.raises(NodeError, match="while the database was building them"):
        await sqlite_sql.query("lite", "SELECT zeroblob(50000000) AS b", {})


async def test_sqlite_stops_fetching_at_the_output_cap(sqlite_sql: SqlConnections) -> None:
    endless = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
        "SELECT i, printf('%.100c', 'x') AS pad FROM n"
    )
    with pytest.raises(NodeError, match=r"by row \d+ \(DUCTWORK_MAX_OUTPUT_BYTES = 100000"):
        await sqlite_sql.query("lite", endless, {}, 1000)
    # The limit is reset for the next query on the same connection.
    assert await sqlite_sql.query("lite", "SELECT length(zeroblob(150000)) AS n", {}) == [
        {"n": 150000}
    ]


# The read-only role from the operator guide -----------------------------------------------


def guide_sql(role: str, database: str) -> str:
    """The first ```sql block of docs/sql-data-source.md, for `role` on `database`."""
    match = re.search(r"```sql\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert match, f"{DOCS} has no ```sql block"
    return match.group(1).replace("ductwork_reader", role).replace("analytics", database)


@pytest.mark.postgres
async def test_the_guides_read_only_role(pg_url: str) -> None:
    database = make_url(pg_url).database
    assert database is not None
    role = f"reader_{uuid.uuid4().hex[:10]}"
    await pg_execute(pg_url, guide_sql(role, database))
    # ALTER DEFAULT PRIVILEGES covers a table made after the grants, too.
    await pg_execute(pg_url, "CREATE TABLE later (x int); INSERT INTO later VALUES (1)")
    reader_url = make_url(pg_url).set(username=role, password=None)
    sql = SqlConnections(
        Settings(sql_connections={"pg": reader_url.render_as_string(hide_password=False)})
    )
    try:
        assert await sql.query("pg", "SELECT count(*) AS n FROM orders", {}) == [{"n": 2}]
        assert await sql.query("pg", "SELECT x FROM later", {}) == [{"x": 1}]
        first = await sql.query("pg", "SELECT pg_backend_pid() AS pid", {})
        second = await sql.query("pg", "SELECT pg_backend_pid() AS pid", {})
        assert first == second  # the session reset works for a plain role, too
        # Past every check in ductwork, the role itself is the last line.
        for query in [
            "SELECT pg_read_file('PG_VERSION')",
            "SELECT pg_advisory_lock(1)",
            "SELECT pg_terminate_backend(1)",
        ]:
            with pytest.raises(Exception, match="permission denied"):
                await run_unchecked(sql, query)
    finally:
        await sql.close()
        await pg_execute(pg_url, f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')
