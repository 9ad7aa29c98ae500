"""The SQL store's tables and backend interface: the leaf the SQL modules build on.

`ductwork.store.sql` (the `SqlStore`, its migrations and backends),
`sql_retention` and `sql_security` write their statements against the tables
here and run them through a `_Backend`; this module imports none of them, so
none of them imports another in a cycle. See `ductwork.store.sql` for the schema's
history and the backends.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Insert,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Update,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeDecorator

T = TypeVar("T")
E = TypeVar("E", bound=Executable)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC on every backend.

    SQLite has no timezone type and SQLAlchemy drops the offset there, so values
    are converted to UTC before they are stored and marked UTC when read back.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # Naive datetimes are UTC by convention throughout ductwork.
            value = value.replace(tzinfo=UTC)
        elif value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL: indexable and compact. It does not keep the key order of
# objects, nor accept NUL characters in strings; plain JSON on SQLite keeps both.
JsonType = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData()

workflows = Table(
    "workflows",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(500), nullable=False),
    Column("version", Integer, nullable=False),
    Column("definition", JsonType, nullable=False),
    Column("status", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_workflows_created_at", "created_at"),
)


def _trigger_table_v5(into: MetaData) -> Table:
    """`workflow_triggers` as schema version 5 has it, defined in `into` (which needs `workflows`).

    One row a claim of `triggers.spec.trigger_index`: ("webhook", path) or
    ("schedule", workflow id). The primary key (type, key) is what refuses a
    second workflow on one webhook path.
    """
    return Table(
        "workflow_triggers",
        into,
        Column(
            "workflow_id",
            String(64),
            ForeignKey("workflows.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("type", String(32), primary_key=True),
        Column("key", String(255), primary_key=True),
        Index("ix_workflow_triggers_workflow_id", "workflow_id"),
    )


workflow_triggers = _trigger_table_v5(metadata)

workflow_versions = Table(
    "workflow_versions",
    metadata,
    Column(
        "workflow_id",
        String(64),
        ForeignKey("workflows.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("definition", JsonType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# No foreign key to `workflows`: runs outlive the workflow they ran (they carry
# their definition snapshot).
workflow_runs = Table(
    "workflow_runs",
    metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("workflow_id", String(64), nullable=False),
    Column("workflow_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("definition", JsonType, nullable=False),
    Column("variables", JsonType, nullable=False),
    Column("result", JsonType),
    Column("error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("start_time", UTCDateTime),
    Column("end_time", UTCDateTime),
    Column("wake_at", UTCDateTime),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    # Unique per workflow (index below): a key reused on another workflow is another run.
    # Compared by code point on PostgreSQL too ("C"), whatever the database's locale:
    # `latest_idempotency_key` reads a prefix range of them off the unique index.
    Column("idempotency_key", String(255).with_variant(String(255, collation="C"), "postgresql")),
    Column("lease_owner", String(255)),
    Column("lease_expires_at", UTCDateTime),
    Column("last_seq", Integer, nullable=False, default=0),
    Column("redrives", Integer, nullable=False, default=0, server_default=text("0")),
    Column("dead_letter", Boolean, nullable=False, default=False, server_default=false()),
    # What started the run ({"type": "manual"}, ...); NULL for runs stored before v4.
    Column("trigger", JsonType),
    # Failed runs whose error workflow has not been started yet (an outbox, see Run).
    Column(
        "error_workflow_pending",
        Boolean,
        nullable=False,
        default=False,
        server_default=false(),
    ),
    # Sub-workflows, usage and concurrency limits (version 6).
    Column("parent_execution_id", String(64)),
    Column("parent_node_id", String(200)),
    Column("depth", Integer, nullable=False, default=0, server_default=text("0")),
    Column("usage", JsonType),
    Column("cost", Float, nullable=False, default=0.0, server_default=text("0")),
    Column("queued_reason", Text),
    Column("admitted", Boolean, nullable=False, default=False, server_default=false()),
    Index("ix_workflow_runs_workflow_id", "workflow_id", "created_at"),
    Index("ix_workflow_runs_parent", "parent_execution_id"),
    # The runs list: newest first across workflows, or of one status.
    Index("ix_workflow_runs_created_at", "created_at"),
    Index("ix_workflow_runs_status", "status", "created_at"),
    Index("ux_workflow_runs_idempotency", "workflow_id", "idempotency_key", unique=True),
)
# Partial: dead-lettered runs are few, and only the dead-letter view reads them.
Index(
    "ix_workflow_runs_dead_letter",
    workflow_runs.c.created_at,
    sqlite_where=workflow_runs.c.dead_letter,
    postgresql_where=workflow_runs.c.dead_letter,
)
# Partial too: the sweep asks for these every second, and there are few at any time.
Index(
    "ix_workflow_runs_error_workflow_pending",
    workflow_runs.c.created_at,
    sqlite_where=workflow_runs.c.error_workflow_pending,
    postgresql_where=workflow_runs.c.error_workflow_pending,
)

node_states = Table(
    "node_states",
    metadata,
    Column(
        "execution_id",
        String(64),
        ForeignKey("workflow_runs.execution_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("node_id", String(200), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("output", JsonType),
    Column("error", Text),
    Column("cached", Boolean, nullable=False),
    Column("latency_ms", Float),
    Column("attempts", Integer, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("branch", String(200)),
    Column("wake_at", UTCDateTime),
    Column("meta", JsonType, nullable=False),
)

run_events = Table(
    "run_events",
    metadata,
    Column(
        "execution_id",
        String(64),
        ForeignKey("workflow_runs.execution_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("seq", Integer, primary_key=True),
    Column("type", String(32), nullable=False),
    Column("node_id", String(200)),
    Column("timestamp", UTCDateTime, nullable=False),
    Column("data", JsonType, nullable=False),
)

schema_version = Table(
    "schema_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)


def _security_tables_v3(into: MetaData) -> tuple[Table, ...]:
    """The security tables as schema version 3 has them, defined in `into`.

    Both `metadata` (what a new database gets) and `_upgrade_to_3` (what an
    existing one gets) use this. When a later version changes one of these
    tables, define that table's new shape in `metadata` directly and leave this
    function as it is: upgrade 3 must keep creating version 3's tables.
    (`api_keys.parent_key_id` was added here directly while version 3 was
    unreleased; from the first release on, these tables are frozen.)
    """
    return (
        Table(
            "users",
            into,
            Column("id", String(64), primary_key=True),
            Column("email", String(320), nullable=False),
            Column("display_name", Text, nullable=False),
            Column("role", String(16), nullable=False),
            Column("password_hash", Text, nullable=False),
            Column("disabled", Boolean, nullable=False),
            Column("created_at", UTCDateTime, nullable=False),
            Column("updated_at", UTCDateTime, nullable=False),
            Index("ux_users_email", "email", unique=True),
            Index("ix_users_created_at", "created_at"),
        ),
        Table(
            "api_keys",
            into,
            Column("id", String(64), primary_key=True),
            Column("name", Text, nullable=False),
            Column("role", String(16), nullable=False),
            Column("prefix", String(64), nullable=False),
            Column("key_hash", String(128), nullable=False),
            # No foreign key: a key made with the admin key has no owner, and the
            # service revokes a deleted user's keys itself.
            Column("owner_id", String(64)),
            Column("created_at", UTCDateTime, nullable=False),
            Column("expires_at", UTCDateTime),
            Column("last_used_at", UTCDateTime),
            Column("revoked_at", UTCDateTime),
            # The key that created this one: revoking it revokes this one too.
            Column("parent_key_id", String(64)),
            Index("ux_api_keys_prefix", "prefix", unique=True),
            Index("ix_api_keys_owner_id", "owner_id"),
            Index("ix_api_keys_created_at", "created_at"),
        ),
        Table(
            "sessions",
            into,
            Column("id", String(64), primary_key=True),
            Column("token_hash", String(128), nullable=False),
            Column("user_id", String(64)),
            Column("key_id", String(64)),
            Column("created_at", UTCDateTime, nullable=False),
            Column("expires_at", UTCDateTime, nullable=False),
            Index("ux_sessions_token_hash", "token_hash", unique=True),
            Index("ix_sessions_user_id", "user_id"),
            Index("ix_sessions_key_id", "key_id"),
        ),
        Table(
            "credentials",
            into,
            Column("id", String(64), primary_key=True),
            Column("name", String(200), nullable=False),
            Column("type", String(64), nullable=False),
            Column("ciphertext", Text, nullable=False),
            Column("created_at", UTCDateTime, nullable=False),
            Column("updated_at", UTCDateTime, nullable=False),
            Column("created_by", String(255)),
            Index("ux_credentials_name", "name", unique=True),
        ),
        Table(
            "audit_log",
            into,
            # Time first (see AuditEntry.id): ordering by id is ordering by time,
            # and the id is the paging cursor.
            Column("id", String(64), primary_key=True),
            Column("at", UTCDateTime, nullable=False),
            Column("actor", String(255), nullable=False),
            Column("actor_name", Text, nullable=False),
            Column("action", String(64), nullable=False),
            Column("target", Text),
            Column("outcome", String(16), nullable=False),
            Column("client", String(255)),
            Column("details", JsonType, nullable=False),
            Index("ix_audit_log_at", "at"),
            Index("ix_audit_log_actor", "actor", "id"),
            Index("ix_audit_log_action", "action", "id"),
        ),
        Table(
            "setup_token",
            into,
            # One row (id 1) at most; token_hash NULL: no setup pending.
            Column("id", Integer, primary_key=True, autoincrement=False),
            Column("token_hash", String(128)),
        ),
    )


users, api_keys, sessions, credentials, audit_log, setup_token = _security_tables_v3(metadata)


# Backends: the same statements on a sync (SQLite) or async (PostgreSQL) connection.


class _Session(ABC):
    """SQLAlchemy Core statements inside one transaction."""

    @abstractmethod
    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> CursorResult[Any]:
        """Run one statement (a list of parameter sets runs it as executemany)."""

    @abstractmethod
    async def run_sync(self, fn: Callable[[Connection], T]) -> T:
        """Call `fn` with a synchronous `Connection` (schema work)."""


def _sqlite_utc_text(value: datetime | None) -> str | None:
    """What `UTCDateTime` and SQLite's DATETIME bind processor together make of a value.

    The same text ("YYYY-MM-DD HH:MM:SS.ffffff", UTC, no offset) in one call instead
    of a TypeDecorator wrapper around SQLAlchemy's dict-and-%-format processor, which
    took a tenth of a node's checkpoint (three datetimes a node state, one an event).
    """
    if value is None:
        return None
    if value.tzinfo is not UTC:
        # Naive datetimes are UTC by convention throughout ductwork.
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def bind_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The bind processor of a column type, as SQLAlchemy applies it, for `_Prepared`/`_Query`.

    On SQLite the two types every checkpoint row carries get a direct equivalent:
    `UTCDateTime` (`_sqlite_utc_text`) and JSON, which is the dialect's
    `json_serializer` itself (SQLAlchemy's wrapper only maps its NULL sentinels, which
    the store never binds; Python None is JSON null either way).
    tests/test_store_sqlite_query.py checks both against SQLAlchemy's own processors.
    """
    if dialect.name == "sqlite":
        if isinstance(type_, UTCDateTime):
            return _sqlite_utc_text
        if isinstance(type_, JSON) and not type_.none_as_null:
            serializer = getattr(dialect, "_json_serializer", None)
            if serializer is not None:
                return serializer  # type: ignore[no-any-return]
    return type_._cached_bind_processor(dialect)  # type: ignore[no-any-return]


class _Prepared:
    """A Core statement compiled once for one dialect, run on the driver itself.

    SQLAlchemy's work around each execution (cache key, execution context,
    result set-up) costs more than SQLite's whole commit: a checkpoint took
    0.29 ms through `Connection.execute` against 0.05 ms on the bare driver. The
    hot path therefore keeps the compiled SQL and applies only the column types'
    bind processors (JSON encoding, UTC datetimes), as SQLAlchemy would.
    """

    __slots__ = ("_plan", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
            raise TypeError(f"cannot prepare {statement} for {dialect.name}")
        names = compiled.positiontup
        self.sql = compiled.string
        self._plan = tuple(
            (name, bind_processor(compiled.binds[name].type, dialect)) for name in names
        )

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """Positional driver arguments for named parameters."""
        # A list comprehension: a generator into tuple() cost a third more per row.
        return tuple(
            [
                params[name] if process is None else process(params[name])
                for name, process in self._plan
            ]
        )


HOT = "ductwork_hot"
"""Execution option marking a statement for `_Query` on SQLite (see `hot`)."""


def hot(statement: E) -> E:
    """Mark a statement the SQLite backend may run on the driver itself (`_Query`).

    Only for statements built once (module constants, per-store attributes): the
    backend keeps each marked statement compiled for as long as it lives.
    """
    return statement.execution_options(**{HOT: True})


_MISSING: Any = object()


class _Query:
    """A marked statement compiled once for SQLite, run on the sqlite3 connection.

    What `_Prepared` does for checkpoints, for any statement: SQLAlchemy's
    per-execution work (cache key, execution context, result set-up) cost more
    than SQLite's own work on the hot reads and writes of a run (0.1 ms a
    statement). The bind and result processors of the column types are applied
    as SQLAlchemy would; scalar column defaults of an INSERT are filled in. A
    statement this cannot reproduce exactly raises TypeError when compiled, and
    the backend runs it through SQLAlchemy instead.
    """

    __slots__ = ("_columns", "_keys", "_plan", "_processed", "returns_rows", "sql")

    def __init__(
        self,
        statement: ClauseElement,
        dialect: Dialect,
        keys: Sequence[str] | None,
        coltype: Callable[[Any], Any] | None = None,
    ) -> None:
        """`coltype(column type)`: the driver's type code of a result column, for the
        dialects whose result processors need it (asyncpg's numerics); None by default."""
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
            raise TypeError(f"cannot prepare {statement}")
        # Python-side defaults SQLAlchemy computes per execution (server-side ones and
        # SQL expressions, `postfetch`, need nothing here).
        if getattr(compiled, "update_prefetch", None) or compiled.literal_execute_params:
            raise TypeError(f"cannot prepare {statement}: column defaults or literal values")
        defaults: dict[str, Any] = {}
        for column in getattr(compiled, "insert_prefetch", None) or ():
            default = column.default
            if default is None or not default.is_scalar:
                raise TypeError(f"cannot prepare {statement}: a default that is not a constant")
            defaults[column.key] = default.arg
        binds = compiled.binds

        def processor(name: str) -> Any:
            return bind_processor(binds[name].type, dialect)

        plan: list[tuple[str, Any, Any]] = []
        if compiled.post_compile_params:
            # IN lists of constants: expanded once, the way SQLAlchemy would expand them.
            if any(bind.required for bind in compiled.post_compile_params):
                raise TypeError(f"cannot prepare {statement}: an IN list given at run time")
            fixed = compiled.construct_params({}, _check=False)
            expanded = compiled._process_parameters_for_postcompile(fixed)
            self.sql = expanded.statement
            for name in expanded.positiontup or ():
                if name in binds:
                    plan.append(self._entry(name, binds[name], defaults, processor(name)))
                else:
                    process = expanded.processors.get(name)
                    value = expanded.parameters[name]
                    plan.append((name, None, value if process is None else process(value)))
        else:
            self.sql = compiled.string
            for name in compiled.positiontup:
                plan.append(self._entry(name, binds[name], defaults, processor(name)))
        self._plan = tuple(plan)
        self._columns = tuple(
            (
                column.keyname,
                column.type._cached_result_processor(
                    dialect, None if coltype is None else coltype(column.type)
                ),
            )
            for column in compiled._result_columns
        )
        self._keys = tuple(key for key, _ in self._columns)
        self._processed = tuple((key, process) for key, process in self._columns if process)
        self.returns_rows = bool(self._columns)

    @staticmethod
    def _entry(
        name: str, bind: Any, defaults: Mapping[str, Any], process: Any
    ) -> tuple[str, Any, Any]:
        if bind.callable is not None:
            raise TypeError(f"cannot prepare a statement with a callable bind ({name})")
        if name in defaults:
            return (name, process, defaults[name])
        return (name, process, _MISSING if bind.required else bind.value)

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """Positional driver arguments for named parameters."""
        out = []
        for name, process, default in self._plan:
            value = params.get(name, _MISSING)
            if value is _MISSING:
                if default is _MISSING:
                    raise KeyError(f"a value is required for bind parameter {name!r}")
                out.append(default if process is None else process(default))
            else:
                out.append(value if process is None else process(value))
        return tuple(out)

    def rows(self, fetched: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        """Rows as dicts of column values, processed as SQLAlchemy would."""
        keys, processed = self._keys, self._processed
        rows = [dict(zip(keys, row, strict=True)) for row in fetched]
        for key, process in processed:
            for row in rows:
                row[key] = process(row[key])
        return rows


class _QueryResult:
    """The part of SQLAlchemy's `CursorResult` the store uses on marked statements."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[dict[str, Any]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def mappings(self) -> _QueryResult:
        return self

    def first(self) -> dict[str, Any] | None:
        return self._rows[0] if self._rows else None

    def all(self) -> list[dict[str, Any]]:
        return self._rows

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._rows)

    def scalar(self) -> Any:
        return next(iter(self._rows[0].values())) if self._rows else None


class HotQueries:
    """The `_Query` of each `hot()` statement for one dialect, compiled on first use.

    An INSERT or UPDATE compiles for the parameter names it is given (SQLAlchemy
    compiles it per execution the same way), so it is kept per set of names. A
    statement `_Query` cannot reproduce (an IN list given at run time, a callable
    default) is remembered as None: it runs through SQLAlchemy.
    """

    __slots__ = ("_coltype", "_dialect", "_queries")

    def __init__(self, dialect: Dialect, coltype: Callable[[Any], Any] | None = None) -> None:
        """`coltype`: as for `_Query` (the driver's type code of a result column, or None)."""
        self._dialect = dialect
        self._coltype = coltype
        # (id(statement), names) -> (statement, query): the statement is kept so its id
        # stays its own.
        self._queries: dict[
            tuple[int, tuple[str, ...] | None], tuple[Executable, _Query | None]
        ] = {}

    def query(self, statement: Executable, params: Mapping[str, Any]) -> _Query | None:
        """The compiled query of a marked statement for `params`' names, or None."""
        keys = tuple(params) if isinstance(statement, Insert | Update) else None
        key = (id(statement), keys)
        entry = self._queries.get(key)
        if entry is None:
            try:
                query: _Query | None = _Query(
                    statement,  # type: ignore[arg-type]
                    self._dialect,
                    keys,
                    self._coltype,
                )
            except (TypeError, KeyError, AttributeError, NotImplementedError):
                query = None
            entry = self._queries[key] = (statement, query)
        return entry[1]

    def entries(self) -> list[tuple[Executable, _Query | None]]:
        """Every statement looked up so far, with its query (None: through SQLAlchemy)."""
        return list(self._queries.values())


class _RawSession(ABC):
    """Prepared statements inside one write transaction, on the driver's connection."""

    @abstractmethod
    async def execute(self, prepared: _Prepared, params: Mapping[str, Any]) -> int:
        """Run a statement once; returns the number of rows it changed."""

    @abstractmethod
    async def executemany(self, prepared: _Prepared, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run a statement once per parameter set."""


class _Backend(ABC):
    dialect_name: str
    refused_errors: tuple[type[Exception], ...]
    """What the driver raises when the database refuses the data (constraints, encoding)."""
    unstorable_errors: tuple[type[Exception], ...] = ()
    """What the driver raises for a value the database cannot hold at all."""

    def is_unstorable(self, error: BaseException) -> bool:
        """Whether `error`, or the driver error SQLAlchemy wrapped in it, is unstorable."""
        seen: BaseException | None = error
        for _ in range(4):  # SQLAlchemy error -> adapter error -> driver error
            if seen is None:
                return False
            if isinstance(seen, self.unstorable_errors):
                return True
            seen = getattr(seen, "orig", None) or seen.__cause__
        return False

    @property
    @abstractmethod
    def dialect(self) -> Dialect:
        """The engine's dialect (set up by `start`)."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def transaction(
        self, *, write: bool, single: bool = False
    ) -> contextlib.AbstractAsyncContextManager[_Session]:
        """One transaction; commits when the block ends, rolls back when it raises.

        `single`: the block runs one statement, which is atomic on its own (and reads
        one snapshot); a server database may then run it without BEGIN/COMMIT (one
        round trip), and SQLite a read without them (two statements fewer).
        """

    @abstractmethod
    def raw_transaction(self) -> contextlib.AbstractAsyncContextManager[_RawSession]:
        """One write transaction for prepared statements only."""

    def schema_transaction(self) -> contextlib.AbstractAsyncContextManager[_Session]:
        """The write transaction `migrate` runs in."""
        return self.transaction(write=True)
