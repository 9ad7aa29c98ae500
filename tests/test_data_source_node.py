"""data-source node: `api` against a real HTTP server, `database` on real SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ductwork.clients.http import GuardedHttpClient
from ductwork.clients.sql import SqlConnections, _run_read_only, check_read_only
from ductwork.nodes.base import NodeError, NodeServices, RetryableError
from ductwork.nodes.data_source import DataSourceConfig, DataSourceNode
from ductwork.settings import Settings
from tests.support.http_servers import RecordingHttpServer, Reply
from tests.support.node_context import FakeNodeContext

NODE = DataSourceNode()
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def server() -> Iterator[RecordingHttpServer]:
    with RecordingHttpServer() as srv:
        yield srv


@pytest.fixture
def shop_db(tmp_path: Path) -> Path:
    """A SQLite file with a few customers, made the ordinary way (stdlib sqlite3)."""
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT,
                                    joined DATE, avatar BLOB, balance REAL);
            """
        )
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)",
            [
                (1, "Ada", "London", "2024-01-05", b"\x00\x01", 10.5),
                (2, "Grace", "New York", "2024-02-11", None, 0.0),
                (3, "Linus", "Helsinki", "2024-03-20", None, -3.25),
                (4, "Margaret", "Boston", "2024-04-01", None, 99.0),
                (5, "Edsger", "Amsterdam", "2024-05-17", None, 1.0),
            ],
        )
    conn.close()
    return path


def make_services(settings: Settings) -> NodeServices:
    return NodeServices(
        settings=settings,
        cache=cast(Any, None),
        llm=cast(Any, None),
        mail=cast(Any, None),
        http=GuardedHttpClient(settings),
        sql=SqlConnections(settings),
    )


@pytest.fixture
async def services(shop_db: Path) -> AsyncIterator[NodeServices]:
    settings = Settings(
        http_allow_private_networks=True,
        sql_connections={"shop": f"sqlite:///{shop_db}", "reports": "sqlite:///reports.db"},
        sql_max_rows=100,
    )
    services = make_services(settings)
    yield services
    await services.http.close()
    await services.sql.close()


def config(**fields: Any) -> DataSourceConfig:
    return DataSourceConfig.model_validate(fields)


async def run(services: NodeServices, **fields: Any) -> Any:
    return await NODE.run(config(**fields), FakeNodeContext(services=services))


# api


async def test_api_get_with_params_and_headers(
    server: RecordingHttpServer, services: NodeServices
) -> None:
    server.script("/data", Reply(body={"items": [1, 2, 3]}))
    result = await run(
        services,
        endpoint=server.url("/data?fixed=yes"),
        params={"limit": 3, "q": "a b"},
        headers={"X-Api-Key": "k"},
    )
    assert result.output == {"items": [1, 2, 3]}
    assert result.meta["status_code"] == 200
    [seen] = server.requests("/data")
    assert seen.method == "GET"
    assert seen.body == b""
    assert seen.query == {"fixed": ["yes"], "limit": ["3"], "q": ["a b"]}
    assert seen.headers["x-api-key"] == "k"


async def test_api_text_output(server: RecordingHttpServer, services: NodeServices) -> None:
    server.script("/plain", Reply(body="hello, world"))
    result = await run(services, source_type="api", endpoint=server.url("/plain"))
    assert result.output == "hello, world"


async def test_api_error_statuses(server: RecordingHttpServer, services: NodeServices) -> None:
    server.script("/down", Reply(status=502, body="bad gateway"))
    server.script("/missing", Reply(status=404))
    with pytest.raises(RetryableError, match="502"):
        await run(services, endpoint=server.url("/down"))
    with pytest.raises(NodeError, match="404") as caught:
        await run(services, endpoint=server.url("/missing"))
    assert not isinstance(caught.value, RetryableError)


# database (SQLite)


async def test_database_rows_come_out_as_json_safe_dicts(services: NodeServices) -> None:
    result = await run(
        services,
        source_type="database",
        connection="shop",
        query="SELECT id, name, joined, avatar, balance FROM customers WHERE id <= :n ORDER BY id",
        params={"n": 2},
    )
    assert result.output == [
        {"id": 1, "name": "Ada", "joined": "2024-01-05", "avatar": "AAE=", "balance": 10.5},
        {"id": 2, "name": "Grace", "joined": "2024-02-11", "avatar": None, "balance": 0.0},
    ]
    assert result.meta["row_count"] == 2
    assert result.meta["truncated"] is False
    assert result.meta["columns"] == ["id", "name", "joined", "avatar", "balance"]


async def test_parameters_are_bound_not_spliced(services: NodeServices) -> None:
    sneaky = "x' OR '1'='1"
    result = await run(
        services,
        source_type="database",
        connection="shop",
        query="SELECT name FROM customers WHERE name = :name",
        params={"name": sneaky},
    )
    assert result.output == []
    listed = await run(
        services,
        source_type="database",
        connection="shop",
        query="SELECT name FROM customers WHERE id IN :ids ORDER BY id",
        params={"ids": [1, 3, 5]},
    )
    assert [row["name"] for row in listed.output] == ["Ada", "Linus", "Edsger"]


async def test_row_limit_truncates_and_reports_it(services: NodeServices) -> None:
    result = await run(
        services,
        source_type="database",
        connection="shop",
        query="SELECT id FROM customers ORDER BY id",
        max_rows=3,
    )
    assert result.output == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert (result.meta["row_count"], result.meta["truncated"]) == (3, True)
    exact = await run(
        services,
        source_type="database",
        connection="shop",
        query="SELECT id FROM customers",
        max_rows=5,
    )
    assert exact.meta["truncated"] is False


async def test_settings_cap_the_row_limit(shop_db: Path) -> None:
    services = make_services(
        Settings(sql_connections={"shop": f"sqlite:///{shop_db}"}, sql_max_rows=2)
    )
    try:
        rows = await services.sql.query("shop", "SELECT id FROM customers", {}, 1000)
    finally:
        await services.sql.close()
    assert len(rows) == 2 and rows.truncated


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO customers (name) VALUES ('Mallory')",
        "DELETE FROM customers",
        "SELECT 1; DROP TABLE customers",
        "UPDATE customers SET name = 'x'",
        "WITH gone AS (DELETE FROM customers RETURNING *) SELECT * FROM gone",
        "SELECT * INTO backup FROM customers",
        "PRAGMA journal_mode = DELETE",
        "ATTACH DATABASE '/tmp/x.db' AS x",
    ],
)
async def test_writes_are_refused(services: NodeServices, shop_db: Path, sql: str) -> None:
    with pytest.raises(NodeError) as caught:
        await services.sql.query("shop", sql, {}, 10)
    assert "read-only" in str(caught.value) or "single SELECT" in str(caught.value)
    # ... and at save time, before any workflow could run it.
    with pytest.raises(ValidationError):
        config(source_type="database", connection="shop", query=sql)
    with sqlite3.connect(shop_db) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (5,)
    conn.close()


async def test_sqlite_connection_itself_is_read_only(services: NodeServices) -> None:
    # Second layer: even a write that slipped past the statement check is refused
    # by SQLite, because ductwork opens the file with mode=ro.
    await services.sql.query("shop", "SELECT 1", {}, 1)  # creates the engine
    engine = cast(Any, services.sql)._engines["shop"]
    with engine.connect() as conn, pytest.raises(Exception, match="readonly"):
        _run_read_only(conn, "DELETE FROM customers", {}, 10, 5.0)


async def test_sqlite_query_time_limit(services: NodeServices) -> None:
    endless = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) "
        "SELECT count(*) AS c FROM n"
    )
    # No wall-clock assertion: the error itself says the limit fired (the query
    # would otherwise count to 10^9).
    with pytest.raises(RetryableError, match="time limit"):
        await services.sql.query("shop", endless, {}, 1, timeout_seconds=0.2)


async def test_unknown_connection_names_the_configured_ones(services: NodeServices) -> None:
    with pytest.raises(NodeError) as caught:
        await run(services, source_type="database", connection="warehouse", query="SELECT 1")
    message = str(caught.value)
    assert "'warehouse'" in message
    assert "'reports'" in message and "'shop'" in message
    assert "DUCTWORK_SQL_CONNECTIONS" in message


async def test_no_connections_configured() -> None:
    services = make_services(Settings())
    with pytest.raises(NodeError, match="no SQL connections are configured"):
        await services.sql.query("any", "SELECT 1", {}, 1)


async def test_failing_query_is_a_node_error(services: NodeServices) -> None:
    with pytest.raises(NodeError, match="no such table") as caught:
        await services.sql.query("shop", "SELECT * FROM orders", {}, 1)
    assert not isinstance(caught.value, RetryableError)
    with pytest.raises(NodeError, match="bind parameter 'n'"):
        await services.sql.query("shop", "SELECT * FROM customers WHERE id = :n", {}, 1)


async def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    services = make_services(Settings(sql_connections={"gone": f"sqlite:///{missing}"}))
    try:
        with pytest.raises(NodeError, match="unable to open") as caught:
            await services.sql.query("gone", "SELECT 1", {}, 1)
    finally:
        await services.sql.close()
    assert not isinstance(caught.value, RetryableError)
    assert not missing.exists()


async def test_unreachable_database_server_is_retryable() -> None:
    with RecordingHttpServer() as gone:  # a port that was just freed: nothing listens
        port = gone.port
    services = make_services(
        Settings(sql_connections={"down": f"postgresql://postgres@127.0.0.1:{port}/test"})
    )
    try:
        with pytest.raises(RetryableError, match="could not connect to SQL connection 'down'"):
            await services.sql.query("down", "SELECT 1", {}, 1)
    finally:
        await services.sql.close()


# Config validation.


def test_config_names_what_each_source_type_needs() -> None:
    assert config(source_type="api", endpoint="https://api.example.com/data").endpoint
    with pytest.raises(ValidationError, match="endpoint is required when source_type is 'api'"):
        config(source_type="api")
    with pytest.raises(
        ValidationError, match="connection and query are required when source_type is 'database'"
    ):
        config(source_type="database")
    with pytest.raises(ValidationError, match="query is required"):
        config(source_type="database", connection="shop")
    with pytest.raises(ValidationError, match="only apply when source_type is 'database'"):
        config(endpoint="https://x.example", query="SELECT 1")
    with pytest.raises(ValidationError, match="must not contain"):
        config(
            source_type="database",
            connection="shop",
            query="SELECT * FROM t WHERE name = '{{ input.name }}'",
        )
    with pytest.raises(ValidationError, match="http:// or https://"):
        config(endpoint="file:///etc/passwd")
    # A builder UI that sends every field, empty, is fine.
    assert config(source_type="database", connection="c", query="SELECT 1", endpoint="", headers={})
    assert NODE.native_fields == {"params"}


def test_check_read_only_accepts_ordinary_selects() -> None:
    for sql in [
        "SELECT 1",
        "select * from t where a = :a;",
        "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
        "/* report */ SELECT replace(name, 'a', 'b') FROM t -- trailing; DROP",
        "(SELECT 1) UNION (SELECT 2)",
        "SELECT 'DELETE FROM t; DROP TABLE t' AS s",
    ]:
        check_read_only(sql)


# database (PostgreSQL)


@pytest.fixture
async def pg_table() -> AsyncIterator[str]:
    table = f"ds_{uuid.uuid4().hex[:12]}"
    engine = create_async_engine(POSTGRES_URL.replace("postgresql", "postgresql+asyncpg"))
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE TABLE {table} (id serial PRIMARY KEY, name text, "
                "price numeric(12, 2), big numeric, at timestamptz, tag uuid)"
            )
        )
        await conn.execute(
            text(
                f"INSERT INTO {table} (name, price, big, at, tag) VALUES "
                "('a', 19.99, 12345678901234567.891, '2024-01-02T03:04:05Z', "
                "'12345678-1234-5678-1234-567812345678'), "
                "('b', 5, 7, '2024-06-01T00:00:00Z', NULL)"
            )
        )
    yield table
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE {table}"))
    await engine.dispose()


@pytest.fixture
async def pg_services() -> AsyncIterator[NodeServices]:
    services = make_services(Settings(sql_connections={"pg": POSTGRES_URL}))
    yield services
    await services.sql.close()


@pytest.mark.postgres
async def test_postgres_rows_and_types(pg_table: str, pg_services: NodeServices) -> None:
    result = await run(
        pg_services,
        source_type="database",
        connection="pg",
        query=f"SELECT name, price, big, at, tag FROM {pg_table} WHERE id >= :id ORDER BY id",
        params={"id": 1},
    )
    assert result.output == [
        {
            "name": "a",
            "price": 19.99,
            "big": "12345678901234567.891",
            "at": "2024-01-02T03:04:05+00:00",
            "tag": "12345678-1234-5678-1234-567812345678",
        },
        {"name": "b", "price": 5, "big": 7, "at": "2024-06-01T00:00:00+00:00", "tag": None},
    ]


@pytest.mark.postgres
async def test_postgres_transaction_is_read_only(pg_table: str, pg_services: NodeServices) -> None:
    # nextval() is a write hidden in a SELECT: the statement check refuses it by name,
    # and behind that check the READ ONLY transaction refuses it too.
    with pytest.raises(NodeError, match=r"config\.query: nextval\(\) is not allowed"):
        await pg_services.sql.query("pg", f"SELECT nextval('{pg_table}_id_seq')", {}, 1)
    engine = cast(Any, pg_services.sql)._engine("pg")
    async with engine.connect() as conn:
        with pytest.raises(Exception, match="read-only transaction"):
            await conn.run_sync(
                lambda c: _run_read_only(c, f"SELECT nextval('{pg_table}_id_seq')", {}, 1, 5.0)
            )
    rows = await pg_services.sql.query("pg", f"SELECT count(*) AS n FROM {pg_table}", {}, 1)
    assert rows == [{"n": 2}]


@pytest.mark.postgres
async def test_postgres_statement_timeout(pg_services: NodeServices) -> None:
    # 10^10 rows: far longer than the time limit on any machine (pg_sleep is refused).
    endless = (
        "SELECT count(*) FROM generate_series(1, 100000) AS a, generate_series(1, 100000) AS b"
    )
    with pytest.raises(RetryableError, match="time limit"):
        await pg_services.sql.query("pg", endless, {}, 1, timeout_seconds=0.2)
