"""Read-only, parameterised SQL over named connections (the data-source `database` node).

Connections are named in settings (`DUCTWORK_SQL_CONNECTIONS='{"reports":
"sqlite:///reports.db"}'`); workflows refer to them by name, never by URL, so a
workflow cannot point ductwork at a database the operator did not configure.

Read-only is enforced in three independent layers, so a gap in one (a parser
quirk, a function with side effects) is caught by the next:

1. the statement must parse (sqlparse) as one SELECT or WITH ... SELECT, with
   no data-changing keyword anywhere in it (`WITH d AS (DELETE ...)`,
   `SELECT ... INTO`, `FOR UPDATE`);
2. the database itself refuses writes: SQLite files are opened with
   `mode=ro`, PostgreSQL and MySQL transactions are `READ ONLY` (which also
   stops `nextval()` and writable CTEs);
3. the transaction is always rolled back.

Values are only ever bound (`sqlalchemy.text` bind parameters); the node also
refuses `{{ }}` templates in the SQL text, so no value is spliced into it.

How queries run, and why: a *sync* engine runs the whole query — checkout,
read-only setup, execute, fetch, rollback — as one call on a small dedicated
thread pool (one thread hop per query, not one per DBAPI call as aiosqlite
does, and a slow report query never blocks the event loop nor starves the
default executor that DNS lookups share). A URL naming an async driver, and
plain `postgresql://` (mapped to asyncpg, already a ductwork dependency, so no
second PostgreSQL driver is needed), runs the same code on the event loop
through `AsyncConnection.run_sync`. A thread cannot be cancelled, so every
query also carries a database-side time limit (SQLite progress handler,
PostgreSQL `statement_timeout`) and ends soon after the node's timeout.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import sqlite3
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlparse
from sqlalchemy import Connection, Engine, bindparam, create_engine, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.elements import BindParameter, TextClause
from sqlparse import tokens as T
from sqlparse.sql import Parenthesis

from ductwork.nodes.base import NodeError, RetryableError
from ductwork.settings import Settings

SQL_THREADS = 8
"""Threads for sync-driver queries (per process): at most this many run at once."""

_ENV_HINT = """DUCTWORK_SQL_CONNECTIONS='{"name": "sqlite:///file.db"}'"""
_WRITE_KEYWORDS = frozenset({"INTO"})
_READ_ONLY_TRANSACTION = frozenset({"postgresql", "mysql", "mariadb"})
_TIMEOUT_SQLSTATES = frozenset({"57014"})  # PostgreSQL query_canceled (statement_timeout)
_SQLITE_PROGRESS_STEPS = 1000


class QueryRows(list[dict[str, Any]]):
    """The rows of a query, as JSON-safe dicts, plus whether more rows were cut off."""

    def __init__(
        self, rows: Sequence[dict[str, Any]], *, columns: Sequence[str], truncated: bool
    ) -> None:
        super().__init__(rows)
        self.columns = list(columns)
        self.truncated = truncated


def check_read_only(sql: str) -> None:
    """Raise ValueError unless `sql` is exactly one SELECT or WITH ... SELECT statement."""
    problem = _read_only_problem(sql)
    if problem is not None:
        raise ValueError(problem)


@functools.lru_cache(maxsize=1024)
def _read_only_problem(sql: str) -> str | None:
    # sqlparse takes ~0.6 ms a statement, and a workflow sends the same text every run.
    # sqlparse ships no type hints; its objects are handled as Any here.
    parsed: list[Any] = list(sqlparse.parse(sql))
    statements = [s for s in parsed if s.token_first(skip_cm=True, skip_ws=True) is not None]
    if not statements:
        return "the query is empty"
    if len(statements) > 1:
        return (
            f"the query holds {len(statements)} statements; only a single SELECT is allowed "
            "(remove the ';' and what follows it)"
        )
    statement = statements[0]
    first = statement.token_first(skip_cm=True, skip_ws=True)
    if statement.get_type() != "SELECT" and not isinstance(first, Parenthesis):
        word = str(first).split(None, 1)[0].upper()
        return f"only read-only SELECT (or WITH ... SELECT) queries are allowed, not {word}"
    for token in statement.flatten():
        word = str(token.normalized).upper()
        if (token.ttype in T.DML and word != "SELECT") or token.ttype in T.DDL:
            return f"{word} is not allowed: queries are read-only"
        if token.ttype in T.Keyword and word in _WRITE_KEYWORDS:
            return f"SELECT ... {word} is not allowed: queries are read-only"
    return None


def json_safe(value: Any) -> Any:
    """A database value as something JSON can hold (dates as ISO text, bytes as base64)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        if value == value.to_integral_value():
            return int(value)
        as_float = float(value)
        # Keep the float only when it reads back as the same number (19.99 does,
        # 12345678901234567.891 does not: that one stays exact, as text).
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    return str(value)


def _unique_columns(keys: Sequence[str]) -> list[str]:
    # `SELECT a.id, b.id` names two columns "id"; keep both as id and id_2.
    seen: dict[str, int] = {}
    columns = []
    for key in keys:
        name = str(key)
        count = seen.get(name, 0) + 1
        seen[name] = count
        columns.append(name if count == 1 else f"{name}_{count}")
    return columns


def _statement(sql: str, params: Mapping[str, Any]) -> TextClause:
    clause = text(sql)
    if not any(isinstance(value, list | tuple) for value in params.values()):
        return clause
    # A list value binds as `IN :ids` -> IN (?, ?, ?), never as spliced text.
    declared = clause.compile().params
    expanding: list[BindParameter[Any]] = [
        bindparam(name, expanding=True)
        for name, value in params.items()
        if name in declared and isinstance(value, list | tuple)
    ]
    return clause.bindparams(*expanding) if expanding else clause


def _run_read_only(
    conn: Connection,
    sql: str,
    params: Mapping[str, Any],
    max_rows: int,
    timeout_seconds: float,
) -> QueryRows:
    """Run one checked SELECT on `conn` inside a read-only transaction, always rolled back."""
    dialect = conn.dialect.name
    driver_conn = conn.connection.driver_connection
    sqlite_conn = driver_conn if isinstance(driver_conn, sqlite3.Connection) else None
    try:
        if dialect in _READ_ONLY_TRANSACTION:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        if dialect == "postgresql":
            conn.execute(
                text("SELECT set_config('statement_timeout', :ms, true)"),
                {"ms": str(max(1, int(timeout_seconds * 1000)))},
            )
        if sqlite_conn is not None:
            deadline = time.monotonic() + timeout_seconds
            sqlite_conn.set_progress_handler(
                lambda: int(time.monotonic() > deadline), _SQLITE_PROGRESS_STEPS
            )
        result = conn.execute(_statement(sql, params), dict(params))
        if not result.returns_rows:
            raise NodeError("the query returned no rows object (is it a SELECT?)")
        columns = _unique_columns(list(result.keys()))
        fetched = result.fetchmany(max_rows + 1)
        result.close()
        rows = [
            {column: json_safe(value) for column, value in zip(columns, row, strict=True)}
            for row in fetched[:max_rows]
        ]
        return QueryRows(rows, columns=columns, truncated=len(fetched) > max_rows)
    finally:
        if sqlite_conn is not None:
            sqlite_conn.set_progress_handler(None, 0)
        conn.rollback()


def _read_only_url(url: URL) -> URL:
    """The URL ductwork actually connects with: read-only SQLite, asyncpg for PostgreSQL."""
    if url.drivername in ("postgres", "postgresql"):
        return url.set(drivername="postgresql+asyncpg")
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:"):
            raise ValueError("an in-memory SQLite database has no data to read; name a file")
        query = dict(url.query)
        if str(query.get("uri", "")).lower() not in ("true", "1"):
            database = "file:" + quote(str(Path(database).expanduser().resolve()))
        # mode=ro makes SQLite itself refuse every write on this connection.
        query.update(uri="true", mode="ro")
        return url.set(database=database, query=query)
    return url


class SqlConnections:
    """The configured SQL connections, each with one lazily created, reused engine."""

    def __init__(self, settings: Settings) -> None:
        self._urls = dict(settings.sql_connections)
        self._max_rows = settings.sql_max_rows
        self._default_timeout = settings.default_node_timeout_seconds
        self._engines: dict[str, Engine | AsyncEngine] = {}
        self._executor: ThreadPoolExecutor | None = None

    @property
    def names(self) -> list[str]:
        """The configured connection names, sorted."""
        return sorted(self._urls)

    def _engine(self, name: str) -> Engine | AsyncEngine:
        engine = self._engines.get(name)
        if engine is not None:
            return engine
        raw = self._urls.get(name)
        if raw is None:
            if self._urls:
                known = ", ".join(repr(known) for known in self.names)
                raise NodeError(
                    f"unknown SQL connection {name!r}; configured connections: {known}. "
                    f"Connections are set with {_ENV_HINT}"
                )
            raise NodeError(
                f"unknown SQL connection {name!r}: no SQL connections are configured. "
                f"Set them with {_ENV_HINT}"
            )
        try:
            url = _read_only_url(make_url(raw))
            # A SQLite file cannot drop a connection; a server can, so ping those.
            pre_ping = url.get_backend_name() != "sqlite"
            if getattr(url.get_dialect(), "is_async", False):
                engine = create_async_engine(url, pool_pre_ping=pre_ping)
            else:
                engine = create_engine(url, pool_pre_ping=pre_ping)
        except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
            raise NodeError(f"SQL connection {name!r} cannot be used: {exc}") from None
        self._engines[name] = engine
        return engine

    async def query(
        self,
        name: str,
        sql: str,
        params: Mapping[str, Any],
        max_rows: int | None = None,
        *,
        timeout_seconds: float | None = None,
    ) -> QueryRows:
        """Run a read-only, parameterised SELECT on connection `name`.

        At most `max_rows` rows come back (never more than `sql_max_rows`);
        `QueryRows.truncated` says whether more existed. Raises NodeError for
        an unknown connection, a statement that is not a single SELECT, or a
        failing query; RetryableError when the database cannot be reached or
        the query runs past `timeout_seconds`.
        """
        try:
            check_read_only(sql)
        except ValueError as exc:
            raise NodeError(str(exc)) from None
        limit = min(max_rows or self._max_rows, self._max_rows)
        timeout = timeout_seconds or self._default_timeout
        engine = self._engine(name)
        work = functools.partial(
            _run_read_only, sql=sql, params=params, max_rows=limit, timeout_seconds=timeout
        )
        try:
            if isinstance(engine, AsyncEngine):
                try:
                    conn = await engine.connect().start()
                except (DBAPIError, OSError) as exc:  # asyncpg raises OSError unwrapped
                    raise _unreachable(name, engine.dialect.name, exc) from None
                try:
                    return await conn.run_sync(lambda sync_conn: work(sync_conn))
                finally:
                    await conn.close()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._pool(), functools.partial(_query_sync, engine, name, work)
            )
        except NodeError:
            raise
        except DBAPIError as exc:
            raise _query_failed(name, exc, timeout) from None
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise NodeError(f"query on {name!r} failed: {reason}") from None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(SQL_THREADS, thread_name_prefix="ductwork-sql")
        return self._executor

    async def close(self) -> None:
        """Dispose every engine (closing pooled connections) and stop the threads."""
        engines, self._engines = self._engines, {}
        for engine in engines.values():
            if isinstance(engine, AsyncEngine):
                await engine.dispose()
            else:
                engine.dispose()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _query_sync(engine: Engine, name: str, work: functools.partial[QueryRows]) -> QueryRows:
    try:
        conn = engine.connect()
    except (DBAPIError, OSError) as exc:
        raise _unreachable(name, engine.dialect.name, exc) from None
    with conn:
        return work(conn)


def _unreachable(name: str, dialect: str, exc: DBAPIError | OSError) -> NodeError:
    reason = exc.orig if isinstance(exc, DBAPIError) else exc
    message = f"could not connect to SQL connection {name!r}: {reason}"
    # A database server may come back; a missing or unreadable SQLite file will not.
    return NodeError(message) if dialect == "sqlite" else RetryableError(message)


def _query_failed(name: str, exc: DBAPIError, timeout: float) -> NodeError:
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    interrupted = isinstance(orig, sqlite3.OperationalError) and "interrupted" in str(orig)
    if interrupted or sqlstate in _TIMEOUT_SQLSTATES:
        return RetryableError(f"query on {name!r} ran past its {timeout:g} s time limit")
    if exc.connection_invalidated:
        return RetryableError(f"query on {name!r} lost its connection: {orig}")
    return NodeError(f"query on {name!r} failed: {orig}")


__all__ = ["SQL_THREADS", "QueryRows", "SqlConnections", "check_read_only", "json_safe"]
