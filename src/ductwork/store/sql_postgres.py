"""PostgreSQL-only statements of the SQL store (`ductwork.store.sql`): fewer round trips.

A run read the portable way is five round trips on PostgreSQL (BEGIN, the run
row, its node states, its events, COMMIT: REPEATABLE READ, so the three reads
agree). Here it is one statement: the node states and events come along as JSON
arrays (`json_agg` of the rows), and one statement sees one snapshot, so they
still agree with the run row. JSON renders timestamps as text in the session's
time zone; `rows_from_json` turns them back into UTC datetimes, as
`UTCDateTime` does for columns.

Statements outside a transaction (`transaction(single=True)`: reading a run, a
workflow, a page of events; taking, renewing and giving up a lease; inserting a run)
run their `hot()` statements on the asyncpg connection of the pooled SQLAlchemy
connection (`DriverSession`), compiled once with the column types' bind and result
processors, as SQLite's hot statements are (asyncpg prepares each once per
connection, in its statement cache): SQLAlchemy's per-execution work (cache key,
execution context, result set-up) cost the API more CPU than PostgreSQL spent on
the read, and was ~10 % of a worker's CPU in `acquire_lease` alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    JSON,
    Float,
    Insert,
    Numeric,
    Select,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.engine import Connection, CursorResult, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

from ductwork.store.sql_schema import (
    HOT,
    HotQueries,
    UTCDateTime,
    _QueryResult,
    _Session,
    audit_log,
    hot,
    node_states,
    run_events,
    workflow_runs,
)

if TYPE_CHECKING:  # sqlalchemy.ext.asyncio is not imported on SQLite (test_cold_imports)
    from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")

_R = workflow_runs.c


def _timestamp_columns(columns: Iterable[Any]) -> frozenset[str]:
    return frozenset(column.name for column in columns if isinstance(column.type, UTCDateTime))


_STATE_TIMESTAMPS = _timestamp_columns(node_states.c)
_EVENT_TIMESTAMPS = _timestamp_columns(run_events.c)


def _rows_json(table: Any) -> Any:
    """The table's rows of the outer run, as one JSON array ('[]' when none)."""
    rows = (
        select(func.coalesce(func.json_agg(table.table_valued()), literal_column("'[]'::json")))
        .where(table.c.execution_id == _R.execution_id)
        .scalar_subquery()
    )
    return type_coerce(rows, JSON)


def _select_run(with_events: bool, with_states: bool = True) -> Select[Any]:
    columns: list[Any] = list(workflow_runs.c)
    if with_states:
        columns.append(_rows_json(node_states).label("_states"))
    if with_events:
        columns.append(_rows_json(run_events).label("_events"))
    return select(*columns).where(_R.execution_id == bindparam("eid"))


# Built once: SQLAlchemy's compiled cache then finds them by identity-free cache key,
# and `DriverSession` runs them on the driver (hot).
_SELECT_RUN = {
    (events, states): hot(_select_run(events, states))
    for events in (True, False)
    for states in (True, False)
}


def select_run_with_children(with_events: bool, with_states: bool = True) -> Select[Any]:
    """The run row (bind `eid`) with the `_states` and `_events` JSON arrays asked for."""
    return _SELECT_RUN[with_events, with_states]


def _utc(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def rows_from_json(items: Any, timestamps: frozenset[str]) -> list[dict[str, Any]]:
    """Rows of a `json_agg` array as the column values a normal read would give."""
    rows: list[dict[str, Any]] = []
    for item in items or ():
        row = dict(item)
        for key in timestamps:
            if row.get(key) is not None:
                row[key] = _utc(row[key])
        rows.append(row)
    return rows


def split_run_row(
    row: Mapping[Any, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(run row, node state rows, event rows in seq order) of `select_run_with_children`."""
    run = dict(row)
    states = rows_from_json(run.pop("_states", None), _STATE_TIMESTAMPS)
    events = rows_from_json(run.pop("_events", None), _EVENT_TIMESTAMPS)
    events.sort(key=lambda event: event["seq"])
    return run, states, events


# A new run and its audit entry ---------------------------------------------------------

AUDIT_PREFIX = "audit_"
"""The audit entry's columns bind as `audit_<column>` in `INSERT_RUN_WITH_AUDIT`."""

INSERT_RUN_WITH_AUDIT: Insert = (
    insert(workflow_runs)
    .values({c.name: bindparam(c.name, type_=c.type) for c in workflow_runs.c})
    .add_cte(
        insert(audit_log)
        .values({c.name: bindparam(AUDIT_PREFIX + c.name, type_=c.type) for c in audit_log.c})
        .cte("audit")
    )
)
"""A run row and its `run.start` audit row in ONE statement (a data-modifying CTE):
one autocommitted round trip instead of BEGIN, two INSERTs, COMMIT. A statement is
atomic: a taken idempotency key writes neither row."""


# Checkpoints -------------------------------------------------------------------------


class _Columns:
    """A table's columns as `unnest` arrays: names, PostgreSQL array casts, bind processors."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        self.table = table.name
        self.names = tuple(column.name for column in table.c)
        self.casts = tuple(f"{column.type.compile(dialect=dialect)}[]" for column in table.c)
        self.processors = tuple(
            column.type.dialect_impl(dialect).bind_processor(dialect) for column in table.c
        )

    def select(self, first: int, joined: bool = True) -> str:
        """`SELECT x.* FROM u, unnest($first::T[], ...) AS x(columns)` (without `u, `
        when not `joined`)."""
        arrays = ", ".join(f"${first + i}::{cast}" for i, cast in enumerate(self.casts))
        source = "u, " if joined else ""
        return f"SELECT x.* FROM {source}unnest({arrays}) AS x({', '.join(self.names)})"

    def arrays(self, rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        """One list per column, with the values as the column type binds them."""
        out: list[list[Any]] = []
        for name, process in zip(self.names, self.processors, strict=True):
            values = [row[name] for row in rows]
            out.append(values if process is None else [process(value) for value in values])
        return out


_PARAMETER = re.compile(r"\$(\d+)")
_MANY_SQL_KEPT = 256
"""Multi-run statements kept (one per sequence of run UPDATE shapes); then start over."""


def _renumbered(sql: str, offset: int) -> str:
    """A compiled statement with its parameters `$n` renamed `$(n + offset)`."""
    return _PARAMETER.sub(lambda match: f"${int(match.group(1)) + offset}", sql)


class OneStatementCheckpoint:
    """One run's checkpoint as ONE statement: 1 round trip instead of 4 or 5.

    The portable checkpoint is BEGIN, an upsert of node states, an insert of events,
    the run's UPDATE, COMMIT. Here the run's UPDATE (fenced by the lease owner when
    one is given) is a data-modifying CTE, and the node states and events are
    inserted only joined to the row it updated: when the lease is lost (or the run
    is unknown) nothing is written and the statement answers 0. A statement is
    atomic, so a refused value or a taken seq writes nothing either.
    """

    def __init__(self, dialect: Dialect) -> None:
        self._states = _Columns(node_states, dialect)
        self._events = _Columns(run_events, dialect)
        keys = ", ".join(column.name for column in node_states.primary_key.columns)
        updates = ", ".join(
            f"{column.name} = EXCLUDED.{column.name}"
            for column in node_states.c
            if not column.primary_key
        )
        self._on_conflict = f" ON CONFLICT ({keys}) DO UPDATE SET {updates}"
        self._sql: dict[tuple[str, bool, bool], str] = {}
        self._many_sql: dict[tuple[tuple[tuple[str, int], ...], bool, bool], str] = {}

    def _statement(self, run_update: str, bound: int, states: bool, events: bool) -> str:
        key = (run_update, states, events)
        sql = self._sql.get(key)
        if sql is None:
            parts = [f"WITH u AS ({run_update} RETURNING 1)"]
            parts += self._inserts(bound + 1, states, events, joined=True)
            sql = self._sql[key] = ", ".join(parts) + " SELECT count(*) FROM u"
        return sql

    def _inserts(self, first: int, states: bool, events: bool, *, joined: bool) -> list[str]:
        """The node state and event INSERT CTEs, their parameters numbered from `first`."""
        parts = []
        if states:
            columns = ", ".join(self._states.names)
            parts.append(
                f"s AS (INSERT INTO {self._states.table} ({columns}) "
                f"{self._states.select(first, joined=joined)}{self._on_conflict})"
            )
            first += len(self._states.names)
        if events:
            columns = ", ".join(self._events.names)
            parts.append(
                f"e AS (INSERT INTO {self._events.table} ({columns}) "
                f"{self._events.select(first, joined=joined)})"
            )
        return parts

    def _many_statement(
        self, run_updates: tuple[tuple[str, int], ...], states: bool, events: bool
    ) -> str:
        key = (run_updates, states, events)
        sql = self._many_sql.get(key)
        if sql is None:
            parts, first = [], 1
            for index, (run_update, count) in enumerate(run_updates):
                # Each run's UPDATE keeps its own parameters, numbered after the previous.
                renumbered = _renumbered(run_update, first - 1)
                parts.append(f"u{index} AS ({renumbered} RETURNING execution_id)")
                first += count
            union = " UNION ALL ".join(
                f"SELECT execution_id FROM u{index}" for index in range(len(run_updates))
            )
            parts.append(f"u AS ({union})")
            parts += self._inserts(first, states, events, joined=False)
            sql = "WITH " + ", ".join(parts) + " SELECT execution_id FROM u"
            if len(self._many_sql) >= _MANY_SQL_KEPT:
                self._many_sql.clear()
            self._many_sql[key] = sql
        return sql

    async def run_many(
        self,
        db: Any,
        run_updates: Sequence[tuple[str, Sequence[Any]]],
        node_rows: Sequence[Mapping[str, Any]],
        event_rows: Sequence[Mapping[str, Any]],
    ) -> set[str]:
        """Several runs' checkpoints as ONE statement, inside the caller's transaction.

        `run_updates`: (UPDATE sql, its arguments) per run, each naming one run
        (whose node states and events are in the rows) and at most once. Returns the
        execution ids whose UPDATE matched; the caller rolls back when one is
        missing (a lost lease, an unknown run), so the batch stays all or nothing.
        Instead of BEGIN, one statement per row and per run, COMMIT: BEGIN, this, COMMIT.
        """
        # Sorted by shape: batches holding the same shapes in any order share one
        # statement text (asyncpg prepares each new text: a round trip and a plan).
        run_updates = sorted(run_updates, key=lambda update: update[0])
        sql = self._many_statement(
            tuple((sql, len(update_args)) for sql, update_args in run_updates),
            bool(node_rows),
            bool(event_rows),
        )
        args: list[Any] = [arg for _, update_args in run_updates for arg in update_args]
        if node_rows:
            args.extend(self._states.arrays(node_rows))
        if event_rows:
            args.extend(self._events.arrays(event_rows))
        return {row[0] for row in await db.fetch(sql, *args)}

    async def run(
        self,
        db: Any,
        run_update: str,
        update_args: Sequence[Any],
        node_rows: Sequence[Mapping[str, Any]],
        event_rows: Sequence[Mapping[str, Any]],
    ) -> bool:
        """Apply it on an asyncpg connection outside a transaction; False when no run row
        matched (lease lost, unknown run) and nothing was written."""
        sql = self._statement(run_update, len(update_args), bool(node_rows), bool(event_rows))
        args = list(update_args)
        if node_rows:
            args.extend(self._states.arrays(node_rows))
        if event_rows:
            args.extend(self._events.arrays(event_rows))
        count: int = await db.fetchval(sql, *args)
        return count > 0


# Reads on the driver ------------------------------------------------------------------


_FLOAT8_OID = 701
_NUMERIC_OID = 1700


def result_type_oid(type_: Any) -> int | None:
    """The PostgreSQL type a numeric column comes back as (asyncpg's result processors
    for numerics are chosen by it); None for the rest, which need none."""
    if isinstance(type_, Float):
        return _FLOAT8_OID
    if isinstance(type_, Numeric):
        return _NUMERIC_OID
    return None


def command_rowcount(status: str) -> int:
    """The rows a statement changed, from asyncpg's command tag (e.g. "UPDATE 1")."""
    count = status.rpartition(" ")[2]
    return int(count) if count.isdigit() else 0


class DriverSession(_Session):
    """One statement outside a transaction on one pooled connection (`single=True`):
    a `hot()` statement, read or write, runs on its asyncpg connection (one round trip,
    none of SQLAlchemy's per-execution work), any other through SQLAlchemy as before.

    The `_Query` applies the column types' bind and result processors as SQLAlchemy
    does, and a driver error is raised as SQLAlchemy raises it (its asyncpg adapter
    translates it, then `DBAPIError.instance` wraps it: an `IntegrityError` for a taken
    key), so callers cannot tell the two paths apart. `driver_error` keeps the
    untranslated error: the backend drops a connection it left broken.
    """

    __slots__ = ("_adapted", "_connection", "_db", "_queries", "driver_error")

    def __init__(self, connection: AsyncConnection, queries: HotQueries) -> None:
        self._connection = connection
        self._queries = queries
        self._db: Any = None
        self._adapted: Any = None
        self.driver_error: BaseException | None = None

    @property
    def used_driver(self) -> Any:
        """The asyncpg connection if a statement has used it yet, else None."""
        return self._db

    async def driver(self) -> Any:
        """The asyncpg connection under the pooled one."""
        if self._db is None:
            raw = await self._connection.get_raw_connection()
            self._adapted = raw.dbapi_connection
            self._db = raw.driver_connection
        return self._db

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> CursorResult[Any]:
        query = None
        if isinstance(parameters, Mapping) and statement.get_execution_options().get(HOT):
            query = self._queries.query(statement, parameters)
        if query is None:
            return await self._connection.execute(statement, parameters)
        assert isinstance(parameters, Mapping)
        db = await self.driver()
        args = query.args(parameters)
        try:
            if query.returns_rows:
                fetched = await db.fetch(query.sql, *args)
                result: Any = _QueryResult(query.rows(fetched), len(fetched))
            else:
                status: str = await db.execute(query.sql, *args)
                result = _QueryResult([], command_rowcount(status))
        except Exception as error:
            self.driver_error = error
            raised = self._as_sqlalchemy_raises(error, query.sql, args)
            if raised is error:
                raise
            raise raised from error
        return result  # type: ignore[no-any-return]

    def _as_sqlalchemy_raises(self, error: Exception, sql: str, args: Any) -> Exception:
        """`error` as SQLAlchemy raises it from its own execution of `sql`."""
        dialect = self._connection.dialect
        dbapi_error = dialect.loaded_dbapi.Error
        # SQLAlchemy's asyncpg adapter's own translation (a private method: should a
        # release rename it, the driver's error is raised as it is, and
        # tests/test_postgres_statements.py's duplicate-insert test says so).
        translate = getattr(self._adapted, "_handle_exception", None)
        if translate is None:
            return error
        try:
            # What SQLAlchemy's asyncpg cursor does with a driver error: raise its DBAPI
            # translation (or the error itself when it has none, e.g. an OSError).
            translate(error)
        except dbapi_error as translated:
            wrapped: Exception = DBAPIError.instance(
                sql, args, translated, dbapi_error, dialect=dialect
            )
            return wrapped
        except Exception as other:
            return other
        return error

    async def run_sync(self, fn: Callable[[Connection], T]) -> T:
        return await self._connection.run_sync(fn)
