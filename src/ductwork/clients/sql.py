"""Read-only, parameterised SQL over named connections (the data-source `database` node).

Connections are named in settings (`DUCTWORK_SQL_CONNECTIONS='{"reports":
"sqlite:///reports.db"}'`); workflows refer to them by name, never by URL, so a
workflow cannot point ductwork at a database the operator did not configure.
Only drivers whose guards below are implemented and tested are accepted
(`SUPPORTED_DRIVERS`); any other URL stops the process at startup.

Read-only is enforced in independent layers, so a gap in one (a parser quirk,
a function with side effects) is caught by the next (docs/sql-data-source.md
is the operator's side: a read-only role):

1. the statement must parse (sqlglot, in the connection's own dialect, so the
   checker reads quotes and backslashes the way the server does) as exactly one
   SELECT, WITH ... SELECT or set operation of SELECTs, with no data-changing
   part anywhere (`WITH d AS (DELETE ...)`, `SELECT ... INTO`, `FOR UPDATE`)
   and no call to a function with lasting side effects (`_DENIED_FUNCTIONS`:
   locks that outlive the transaction, signals to other sessions, server files,
   sequences, other databases, settings, sleeps);
2. the database refuses writes: SQLite files are opened with `mode=ro`,
   PostgreSQL transactions are `READ ONLY` with `standard_conforming_strings`
   pinned on (the quoting sqlglot assumed); on PostgreSQL the statement also
   runs as a subquery of ductwork's own, where a smuggled `;` is a syntax error;
3. the transaction is always rolled back, and a PostgreSQL connection's session
   state (advisory locks, settings, cursors, LISTENs, temp tables) is reset
   before it goes back to the pool; a connection that cannot be reset is closed.

Values are only ever bound (`sqlalchemy.text` bind parameters); the node also
refuses `{{ }}` templates in the SQL text, so no value is spliced into it.

Memory is bounded by the node's limits, not by the size of the result: on
PostgreSQL the query is wrapped so the server stops after `max_rows + 1` rows
(`LIMIT`) and raises an error as soon as the running size of the rows' text
passes twice DUCTWORK_MAX_OUTPUT_BYTES (so one huge value is never sent); on
SQLite rows are stepped lazily and `SQLITE_LIMIT_LENGTH` stops a huge value
while it is being built. Either way the rows are converted in batches with a
running count of their JSON size, which stops at DUCTWORK_MAX_OUTPUT_BYTES
(the same limit the engine puts on every node's output).

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
import hashlib
import logging
import sqlite3
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
from sqlalchemy import Connection, Engine, bindparam, create_engine, event, make_url, text
from sqlalchemy.engine import URL, AdaptedConnection, CursorResult
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import PoolResetState
from sqlalchemy.sql.elements import BindParameter, TextClause

from ductwork.nodes.base import NodeError, RetryableError
from ductwork.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlglot import exp

SQL_THREADS = 8
"""Threads for sync-driver queries (per process): at most this many run at once."""

CREDENTIAL_ENGINES = 32
"""Engines kept for `sql` credentials (per process), least recently used dropped first."""

SUPPORTED_DRIVERS: Mapping[str, frozenset[str]] = {
    "sqlite": frozenset({"pysqlite"}),
    "postgresql": frozenset({"asyncpg", "psycopg"}),
}
"""Backend -> drivers ductwork connects with; each has its read-only guards implemented
and tested here. Anything else (MySQL, aiosqlite, psycopg2, ...) is refused at startup."""

_SQLGLOT_DIALECTS = {"sqlite": "sqlite", "postgresql": "postgres"}
MAX_QUERY_CHARS = 20_000
"""The longest query text accepted (the statement check reads it all)."""
_ENV_HINT = """DUCTWORK_SQL_CONNECTIONS='{"name": "sqlite:///file.db"}'"""
_TIMEOUT_SQLSTATES = frozenset({"57014"})  # PostgreSQL query_canceled (statement_timeout)
_SQLITE_PROGRESS_STEPS = 1000
_FETCH_BATCH = 100
_SQLITE_MAX_LIMIT = 2**31 - 1  # sqlite3 limits are C ints
_OVER_LIMIT_MARKER = "ductwork-result-over-limit-"
_SERVER_SIZE_FACTOR = 2
"""The database-side size guard allows twice the output cap: it measures the rows' text
form (bytea as hex is 1.5x its JSON base64), and only has to stop blow-ups; the JSON
count made while fetching is the exact check."""

_log = logging.getLogger(__name__)


class QueryRows(list[dict[str, Any]]):
    """The rows of a query, as JSON-safe dicts, plus whether more rows were cut off."""

    def __init__(
        self, rows: Sequence[dict[str, Any]], *, columns: Sequence[str], truncated: bool
    ) -> None:
        super().__init__(rows)
        self.columns = list(columns)
        self.truncated = truncated


# The statement check -------------------------------------------------------------------

_LOCKS = "takes a lock that outlives the query"
_SIGNALS = "acts on other sessions of the database server"
_SERVER_FILES = "reads or writes files on the database server"
_OTHER_DATABASES = "reaches other databases"
_SETTINGS = "changes settings of the session"
_SLEEPS = "holds the connection on purpose (the node's timeout already bounds a query)"
_SEQUENCES = "changes a sequence"
_TRANSACTION = "assigns a transaction id or sends a notification"
_HIDDEN_SQL = "runs SQL text of its own, which this check never sees"
_SERVER_STATE = "changes the state of the database server"
_NATIVE_CODE = "loads native code into the database"

_DENIED_FUNCTIONS: Mapping[str, Mapping[str, str]] = {
    "postgres": {
        "pg_terminate_backend": _SIGNALS,
        "pg_cancel_backend": _SIGNALS,
        "pg_log_backend_memory_contexts": _SIGNALS,
        "pg_stat_file": _SERVER_FILES,
        "set_config": _SETTINGS,
        "pg_sleep": _SLEEPS,
        "pg_sleep_for": _SLEEPS,
        "pg_sleep_until": _SLEEPS,
        "nextval": _SEQUENCES,
        "setval": _SEQUENCES,
        "txid_current": _TRANSACTION,
        "txid_current_if_assigned": _TRANSACTION,
        "pg_current_xact_id": _TRANSACTION,
        "pg_current_xact_id_if_assigned": _TRANSACTION,
        "pg_notify": _TRANSACTION,
        "pg_logical_emit_message": _TRANSACTION,
        "query_to_xml": _HIDDEN_SQL,
        "query_to_xmlschema": _HIDDEN_SQL,
        "query_to_xml_and_xmlschema": _HIDDEN_SQL,
        "cursor_to_xml": _HIDDEN_SQL,
        "cursor_to_xmlschema": _HIDDEN_SQL,
        "pg_reload_conf": _SERVER_STATE,
        "pg_rotate_logfile": _SERVER_STATE,
        "pg_switch_wal": _SERVER_STATE,
        "pg_promote": _SERVER_STATE,
        "pg_import_system_collations": _SERVER_STATE,
        "pg_export_snapshot": _SERVER_STATE,
        "pg_stat_statements_reset": _SERVER_STATE,
        "pg_replication_slot_advance": _SERVER_STATE,
        "pg_drop_replication_slot": _SERVER_STATE,
    },
    "sqlite": {
        "load_extension": _NATIVE_CODE,
        "readfile": _SERVER_FILES,
        "writefile": _SERVER_FILES,
        "fsdir": _SERVER_FILES,
        "edit": _SERVER_FILES,
        "zipfile": _SERVER_FILES,
        "fts3_tokenizer": _NATIVE_CODE,
    },
}
"""Functions refused by name (lower case), grouped by the dialect that has them."""

_DENIED_PREFIXES: Mapping[str, Sequence[tuple[str, str]]] = {
    "postgres": (
        ("pg_advisory_", _LOCKS),  # pg_advisory_lock, _xact_lock, _lock_shared, _unlock...
        ("pg_try_advisory_", _LOCKS),
        ("pg_read_", _SERVER_FILES),  # pg_read_file, pg_read_binary_file
        ("pg_ls_", _SERVER_FILES),  # pg_ls_dir, pg_ls_logdir, pg_ls_waldir, ...
        ("pg_file_", _SERVER_FILES),  # adminpack: pg_file_write, pg_file_unlink, ...
        ("lo_", _SERVER_FILES),  # lo_import, lo_export, lo_create, lo_unlink, lo_put, ...
        ("dblink", _OTHER_DATABASES),  # dblink, dblink_exec, dblink_connect, ...
        ("pg_create_", _SERVER_STATE),  # replication slots, restore points
        ("pg_logical_slot_", _SERVER_STATE),  # consumes a slot's changes
        ("pg_replication_origin_", _SERVER_STATE),
        ("pg_stat_reset", _SERVER_STATE),
        ("pg_wal_replay_", _SERVER_STATE),
        ("pg_backup_", _SERVER_STATE),
        ("pg_start_backup", _SERVER_STATE),
        ("pg_stop_backup", _SERVER_STATE),
    ),
    "sqlite": (),
}


@functools.cache
def _write_kinds() -> tuple[tuple[type[exp.Expr], str], ...]:
    # sqlglot (~0.1 s to import) loads on the first check, not with the module.
    from sqlglot import exp

    return (
        (exp.Into, "SELECT ... INTO creates a table"),
        (exp.Lock, "FOR UPDATE / FOR SHARE locks rows"),
        (exp.DML, "{word} changes data"),  # INSERT, UPDATE, DELETE, MERGE (also inside WITH)
        (exp.DDL, "{word} changes the schema"),
        (exp.Drop, "DROP changes the schema"),
        (exp.Alter, "ALTER changes the schema"),
        (exp.TruncateTable, "TRUNCATE deletes data"),
        (exp.Copy, "COPY reads or writes files"),
        (exp.LoadData, "LOAD DATA reads files"),
        (exp.Command, "{word} is not a query"),  # what sqlglot could not parse as anything else
        (exp.Transaction, "BEGIN controls the transaction"),
        (exp.Commit, "COMMIT controls the transaction"),
        (exp.Rollback, "ROLLBACK controls the transaction"),
        (exp.Set, "SET changes settings"),
        (exp.Pragma, "PRAGMA changes settings"),
        (exp.Attach, "ATTACH opens another database"),
        (exp.Grant, "GRANT changes privileges"),
        (exp.Use, "USE changes the session"),
        (exp.Execute, "EXECUTE runs a prepared statement"),
    )


@functools.cache
def _query_roots() -> tuple[type[exp.Expr], ...]:
    from sqlglot import exp

    return (exp.Select, exp.SetOperation, exp.Subquery)


def check_read_only(sql: str, dialect: str | None = None) -> None:
    """Raise ValueError unless `sql` is exactly one read-only SELECT, saying why not.

    `dialect` is a SQLAlchemy backend name ("sqlite", "postgresql"): the check
    reads the text the way that database does. Without one (a workflow is
    validated before any connection is chosen) the query must pass in at least
    one supported dialect; the check is repeated in the real dialect at run time.
    """
    dialects = [_SQLGLOT_DIALECTS[dialect]] if dialect else list(_SQLGLOT_DIALECTS.values())
    problems = [_read_only_problem(sql, name) for name in dialects]
    if all(problem is not None for problem in problems):
        raise ValueError(problems[0])


@functools.lru_cache(maxsize=1024)
def _read_only_problem(sql: str, dialect: str) -> str | None:
    # Parsing takes ~1 ms for a usual query, and a workflow sends the same text every
    # run. It grows with the text (~0.25 s for 16,000 characters, on the event loop
    # when a workflow is saved), hence the cap.
    if len(sql) > MAX_QUERY_CHARS:
        return (
            f"the query is {len(sql)} characters, over the {MAX_QUERY_CHARS} this check "
            "reads; pass long lists as params (`IN :ids`) instead of writing them out"
        )
    import sqlglot.errors
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect

    try:
        parsed = Dialect.get_or_raise(dialect).parse(sql)
        # A comment after the last ';' parses as a bare Semicolon: not a statement.
        statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" (line {first['line']}, column {first['col']})" if "line" in first else ""
        reason = first.get("description") or str(exc)
        return f"the query does not parse as {dialect} SQL: {reason}{where}"
    except sqlglot.errors.SqlglotError as exc:
        return f"the query does not parse as {dialect} SQL: {exc}"
    except RecursionError:
        return "the query is nested too deeply to check"
    if not statements:
        return "the query is empty"
    if len(statements) > 1:
        return (
            f"the query holds {len(statements)} statements; only a single SELECT is allowed "
            "(remove the ';' and what follows it)"
        )
    [statement] = statements
    if not isinstance(statement, _query_roots()):
        return (
            "only a read-only SELECT (or WITH ... SELECT) is allowed, "
            f"not {_statement_word(statement)}"
        )
    for node in statement.walk():
        for kind, why in _write_kinds():
            if isinstance(node, kind):
                reason = why.format(word=_statement_word(node))
                return f"{reason}: queries must be read-only"
        if isinstance(node, exp.Func):
            problem = _function_problem(node)
            if problem is not None:
                return problem
    return None


def _statement_word(node: exp.Expr) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper()


def _function_problem(node: exp.Func) -> str | None:
    # Every dialect's list applies everywhere: a name denied on PostgreSQL is no
    # loss on SQLite, and a workflow is checked before its connection is known.
    from sqlglot import exp

    name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
    reason = next((denied[name] for denied in _DENIED_FUNCTIONS.values() if name in denied), None)
    if reason is None:
        reason = next(
            (
                why
                for prefixes in _DENIED_PREFIXES.values()
                for prefix, why in prefixes
                if name.startswith(prefix)
            ),
            None,
        )
    if reason is None:
        return None
    return f"{name}() is not allowed: it {reason}; queries must be read-only and leave no trace"


@functools.lru_cache(maxsize=1024)
def _statement_body(sql: str, dialect: str) -> str:
    """`sql` without a trailing ';' and trailing comments, ready to be nested in a query."""
    import sqlglot
    from sqlglot.dialects.dialect import Dialect

    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    except sqlglot.errors.SqlglotError:
        return sql
    meaningful = [token for token in tokens if token.token_type != sqlglot.TokenType.SEMICOLON]
    return sql[: meaningful[-1].end + 1] if meaningful else sql


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
    max_bytes: int = Settings.model_fields["max_output_bytes"].default,
) -> QueryRows:
    """Run one SELECT on `conn` inside a read-only transaction, always rolled back.

    The statement check is the caller's; this adds the database-side layers and
    keeps memory within `max_rows` rows and `max_bytes` bytes of JSON.
    """
    dialect = conn.dialect.name
    driver_conn = conn.connection.driver_connection
    sqlite_conn = driver_conn if isinstance(driver_conn, sqlite3.Connection) else None
    server_limit = min(max_bytes * _SERVER_SIZE_FACTOR, _SQLITE_MAX_LIMIT)
    sqlite_length: int | None = None
    bounded = dialect == "postgresql"
    try:
        if bounded:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            conn.execute(
                text(
                    "SELECT set_config('statement_timeout', :ms, true), "
                    "set_config('standard_conforming_strings', 'on', true)"
                ),
                {"ms": str(max(1, int(timeout_seconds * 1000)))},
            )
            sql = _bounded_postgres(_statement_body(sql, "postgres"), max_rows, server_limit)
        if sqlite_conn is not None:
            deadline = time.monotonic() + timeout_seconds
            sqlite_conn.set_progress_handler(
                lambda: int(time.monotonic() > deadline), _SQLITE_PROGRESS_STEPS
            )
            # SQLite refuses to build any string or blob past this, mid-statement.
            sqlite_length = sqlite_conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, server_limit)
        result = conn.execute(_statement(sql, params), dict(params))
        if not result.returns_rows:
            raise NodeError("the query returned no rows object (is it a SELECT?)")
        try:
            return _collect(result, max_rows, max_bytes, drop_last_column=bounded)
        finally:
            result.close()
    finally:
        if sqlite_conn is not None:
            sqlite_conn.set_progress_handler(None, 0)
            if sqlite_length is not None:
                sqlite_conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, sqlite_length)
        conn.rollback()


def _bounded_postgres(body: str, max_rows: int, byte_limit: int) -> str:
    """`body` nested so PostgreSQL sends at most `max_rows + 1` rows and stops, with an
    error, once the running size of the rows passes `byte_limit`.

    The size is measured on the server, row by row, before a row is sent: a single
    huge value fails there instead of being built again in ductwork's memory. It is
    the length of the whole row's text form, which is close to its JSON and, unlike
    `pg_column_size`, never sees a value still compressed in TOAST (a test keeps
    that honest). The error is a failed cast of a marker text (plain SQL has no
    RAISE), concatenated with a per-row value so the planner cannot fold it in
    advance. Nesting also makes a `;` smuggled past the parser a syntax error.
    """
    return (
        'SELECT "ductwork$sized".* FROM (\n'
        'SELECT "ductwork$rows".*, sum(octet_length("ductwork$rows"::text)) '
        'OVER (ROWS UNBOUNDED PRECEDING) AS "ductwork$bytes" FROM (\n'
        "SELECT * FROM (\n"
        f"{body}\n"
        f') AS "ductwork$query" LIMIT {int(max_rows) + 1}\n'
        ') AS "ductwork$rows"\n'
        ') AS "ductwork$sized"\n'
        f'WHERE CASE WHEN "ductwork$sized"."ductwork$bytes" <= {int(byte_limit)} THEN true '
        f'ELSE CAST(\'{_OVER_LIMIT_MARKER}\' || "ductwork$sized"."ductwork$bytes" AS int) '
        "= 0 END"
    )


def _collect(
    result: CursorResult[Any], max_rows: int, max_bytes: int, *, drop_last_column: bool
) -> QueryRows:
    """Convert rows batch by batch, counting their JSON size as the engine will."""
    keys = list(result.keys())
    width = len(keys) - 1 if drop_last_column else len(keys)
    columns = _unique_columns(keys[:width])
    rows: list[dict[str, Any]] = []
    size = 2  # the list's brackets
    while batch := result.fetchmany(min(_FETCH_BATCH, max_rows + 1 - len(rows))):
        for raw in batch:
            if len(rows) == max_rows:
                return QueryRows(rows, columns=columns, truncated=True)
            row = {column: json_safe(raw[i]) for i, column in enumerate(columns)}
            size += len(orjson.dumps(row)) + (1 if rows else 0)
            if size > max_bytes:
                raise NodeError(_over_limit(max_bytes, f"by row {len(rows) + 1}"))
            rows.append(row)
    return QueryRows(rows, columns=columns, truncated=False)


def _over_limit(max_bytes: int, where: str) -> str:
    return (
        f"config.query: the rows are over the node's output limit {where} "
        f"(DUCTWORK_MAX_OUTPUT_BYTES = {max_bytes} bytes of JSON); select fewer or "
        "smaller columns, or lower max_rows"
    )


def _read_only_url(url: URL) -> URL:
    """The URL ductwork actually connects with: read-only SQLite, asyncpg for PostgreSQL.

    Raises ValueError for a driver outside `SUPPORTED_DRIVERS` or a SQLite URL
    with no file to read.
    """
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+asyncpg")
    backend = url.get_backend_name()
    allowed = SUPPORTED_DRIVERS.get(backend, frozenset())
    driver = url.drivername.partition("+")[2] or (
        "pysqlite" if backend == "sqlite" else url.drivername
    )
    if driver not in allowed:
        raise ValueError(
            f"driver {url.drivername!r} is not supported: use sqlite:///FILE, "
            "postgresql:// (asyncpg) or postgresql+psycopg:// — ductwork connects only with "
            "drivers whose read-only guards it implements and tests"
        )
    if backend == "sqlite":
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


_RESET_POSTGRES_SESSION = (
    "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; "
    "SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES"
)
"""DISCARD ALL without its DEALLOCATE ALL and DISCARD PLANS: asyncpg and psycopg keep
prepared statements client-side and would fail on the next use of a deallocated one."""


def _reset_postgres_session(
    dbapi_connection: Any, _record: Any, reset_state: PoolResetState
) -> None:
    """Pool `reset` hook: leave nothing of a query's session behind for the next one.

    The read-only transaction is rolled back first (SET and RESET are
    transactional, and advisory locks taken at session level survive a
    rollback), then the session is reset outside any transaction. An exception
    here makes the pool close the connection instead of reusing it.
    """
    if reset_state.terminate_only or not reset_state.asyncio_safe:
        return
    dbapi_connection.rollback()
    if isinstance(dbapi_connection, AdaptedConnection):
        # asyncpg: execute() without arguments is one simple-protocol round trip.
        dbapi_connection.run_async(lambda driver: driver.execute(_RESET_POSTGRES_SESSION))
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(_RESET_POSTGRES_SESSION)
    finally:
        cursor.close()
    dbapi_connection.commit()


class SqlConnections:
    """The configured SQL connections, each with one lazily created, reused engine."""

    def __init__(self, settings: Settings) -> None:
        """Check every configured URL; raise ValueError naming the first bad one."""
        self._urls: dict[str, URL] = {}
        for name, raw in settings.sql_connections.items():
            try:
                self._urls[name] = _read_only_url(make_url(raw))
            except (ArgumentError, ValueError) as exc:
                raise ValueError(
                    f"DUCTWORK_SQL_CONNECTIONS: connection {name!r} cannot be used: {exc}"
                ) from None
        self._max_rows = settings.sql_max_rows
        self._max_bytes = settings.max_output_bytes
        self._default_timeout = settings.default_node_timeout_seconds
        self._engines: dict[str, Engine | AsyncEngine] = {}
        self._credential_engines: OrderedDict[str, Engine | AsyncEngine] = OrderedDict()
        self._disposing: set[asyncio.Task[None]] = set()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def names(self) -> list[str]:
        """The configured connection names, sorted."""
        return sorted(self._urls)

    def _engine(self, name: str) -> Engine | AsyncEngine:
        engine = self._engines.get(name)
        if engine is not None:
            return engine
        url = self._urls.get(name)
        if url is not None:
            engine = self._engines[name] = _create_engine(url, f"SQL connection {name!r}")
            return engine
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

    def _credential_engine(self, raw_url: str, label: str) -> Engine | AsyncEngine:
        """The engine of a `sql` credential's URL, under the same guards as configured ones.

        Engines are cached per hash of the URL (never the URL itself as a key that
        could be listed), at most CREDENTIAL_ENGINES of them; the least recently
        used one is disposed (its pooled connections closed) when a new one comes.
        """
        key = hashlib.sha256(raw_url.encode()).hexdigest()
        engine = self._credential_engines.get(key)
        if engine is not None:
            self._credential_engines.move_to_end(key)
            return engine
        try:
            url = _read_only_url(make_url(raw_url))
        except (ArgumentError, ValueError) as exc:
            # The URL itself is never quoted: it holds the password.
            reason = str(exc) if isinstance(exc, ValueError) else "not a database URL"
            raise NodeError(f"config.credential: {label} cannot be used: {reason}") from None
        engine = _create_engine(url, label)
        self._credential_engines[key] = engine
        while len(self._credential_engines) > CREDENTIAL_ENGINES:
            _, evicted = self._credential_engines.popitem(last=False)
            self._dispose_later(evicted)
        return engine

    def _dispose_later(self, engine: Engine | AsyncEngine) -> None:
        # Queries in flight keep their checked-out connection; dispose closes the pool's.
        if not isinstance(engine, Engine):  # AsyncEngine (imported lazily: ORM)
            task = asyncio.get_running_loop().create_task(engine.dispose())
            self._disposing.add(task)
            task.add_done_callback(self._disposing.discard)
        else:
            engine.dispose()

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
        an unknown connection, a statement that is not a single read-only
        SELECT in the connection's dialect, rows over DUCTWORK_MAX_OUTPUT_BYTES,
        or a failing query; RetryableError when the database cannot be reached
        or the query runs past `timeout_seconds`.
        """
        engine = self._engine(name)
        return await self._query(
            engine, repr(name), f"SQL connection {name!r}", sql, params, max_rows, timeout_seconds
        )

    async def query_url(
        self,
        url: str,
        sql: str,
        params: Mapping[str, Any],
        max_rows: int | None = None,
        *,
        timeout_seconds: float | None = None,
        label: str = "the credential",
    ) -> QueryRows:
        """`query` on a `sql` credential's URL instead of a configured connection.

        The same guards apply (supported drivers only, read-only SQLite files,
        read-only PostgreSQL transactions, the statement check, row and byte
        limits). `label` names the source in messages; the URL never appears.
        """
        engine = self._credential_engine(url, label)
        return await self._query(engine, label, label, sql, params, max_rows, timeout_seconds)

    async def _query(
        self,
        engine: Engine | AsyncEngine,
        name: str,
        where: str,
        sql: str,
        params: Mapping[str, Any],
        max_rows: int | None,
        timeout_seconds: float | None,
    ) -> QueryRows:
        """`name`: the source as queries are named in messages; `where`: as connections are."""
        try:
            check_read_only(sql, engine.dialect.name)
        except ValueError as exc:
            raise NodeError(f"config.query: {exc}") from None
        limit = min(max_rows or self._max_rows, self._max_rows)
        timeout = timeout_seconds or self._default_timeout
        work = functools.partial(
            _run_read_only,
            sql=sql,
            params=params,
            max_rows=limit,
            timeout_seconds=timeout,
            max_bytes=self._max_bytes,
        )
        try:
            if not isinstance(engine, Engine):  # AsyncEngine (imported lazily: ORM)
                try:
                    conn = await engine.connect().start()
                except (DBAPIError, OSError) as exc:  # asyncpg raises OSError unwrapped
                    raise _unreachable(where, engine.dialect.name, exc) from None
                try:
                    return await conn.run_sync(lambda sync_conn: work(sync_conn))
                finally:
                    await conn.close()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._pool(), functools.partial(_query_sync, engine, where, work)
            )
        except NodeError:
            raise
        except DBAPIError as exc:
            raise _query_failed(name, exc, timeout, self._max_bytes) from None
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise NodeError(f"query on {name} failed: {reason}") from None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(SQL_THREADS, thread_name_prefix="ductwork-sql")
        return self._executor

    async def close(self) -> None:
        """Dispose every engine (closing pooled connections) and stop the threads."""
        engines, self._engines = self._engines, {}
        credential_engines, self._credential_engines = self._credential_engines, OrderedDict()
        for engine in [*engines.values(), *credential_engines.values()]:
            if not isinstance(engine, Engine):  # AsyncEngine (imported lazily: ORM)
                await engine.dispose()
            else:
                engine.dispose()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _create_engine(url: URL, label: str) -> Engine | AsyncEngine:
    """An engine for a checked URL, with the PostgreSQL session reset hook."""
    try:
        # A SQLite file cannot drop a connection; a server can, so ping those.
        pre_ping = url.get_backend_name() != "sqlite"
        engine: Engine | AsyncEngine
        if getattr(url.get_dialect(), "is_async", False):
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine(url, pool_pre_ping=pre_ping)
            sync_engine = engine.sync_engine
        else:
            engine = sync_engine = create_engine(url, pool_pre_ping=pre_ping)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise NodeError(f"{label} cannot be used: {exc}") from None
    if url.get_backend_name() == "postgresql":
        event.listen(sync_engine, "reset", _reset_postgres_session)
    return engine


def _query_sync(engine: Engine, where: str, work: functools.partial[QueryRows]) -> QueryRows:
    try:
        conn = engine.connect()
    except (DBAPIError, OSError) as exc:
        raise _unreachable(where, engine.dialect.name, exc) from None
    with conn:
        return work(conn)


def _unreachable(where: str, dialect: str, exc: DBAPIError | OSError) -> NodeError:
    reason = exc.orig if isinstance(exc, DBAPIError) else exc
    message = f"could not connect to {where}: {reason}"
    # A database server may come back; a missing or unreadable SQLite file will not.
    return NodeError(message) if dialect == "sqlite" else RetryableError(message)


def _query_failed(name: str, exc: DBAPIError, timeout: float, max_bytes: int) -> NodeError:
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    interrupted = isinstance(orig, sqlite3.OperationalError) and "interrupted" in str(orig)
    if interrupted or sqlstate in _TIMEOUT_SQLSTATES:
        return RetryableError(f"query on {name} ran past its {timeout:g} s time limit")
    if _OVER_LIMIT_MARKER in str(orig) or "string or blob too big" in str(orig):
        return NodeError(_over_limit(max_bytes, "while the database was building them"))
    if exc.connection_invalidated:
        return RetryableError(f"query on {name} lost its connection: {orig}")
    return NodeError(f"query on {name} failed: {orig}")


__all__ = [
    "MAX_QUERY_CHARS",
    "SQL_THREADS",
    "SUPPORTED_DRIVERS",
    "QueryRows",
    "SqlConnections",
    "check_read_only",
    "json_safe",
]
