"""The SQL store: SQLite (embedded) and PostgreSQL (scaled out), one schema, SQLAlchemy Core.

Queries are written once against `metadata` (in `sql_schema.py`, a leaf module
with the backend interface) and run through a small backend abstraction:

- SQLite uses the *sync* pysqlite driver called directly on the event loop, on
  one connection. A SQLite commit takes ~0.02 ms; handing each statement to a
  thread (aiosqlite) costs far more than that (0.77 ms against 0.10 ms a node in
  DESIGN.md's measurements). A transaction therefore never yields to the loop,
  so coroutines cannot interleave inside one.
- PostgreSQL uses SQLAlchemy's async engine on asyncpg, pooled.

Tables: `workflows` (current version), `workflow_versions` (every version),
`workflow_runs` (one row a run, with the definition it started with),
`node_states` (one row a node of a run, upserted, so parallel branches never
overwrite each other) and `run_events` (appended, keyed by run and seq). The
security records (schema version 3; the `SecurityStore` in `sql_security.py`):
`users`, `api_keys`, `sessions`, `credentials`, `audit_log` and the one-row
`setup_token`. Version 4 adds `workflow_runs.trigger` and the runs list's indexes.
Version 5 adds `workflow_triggers` (what each workflow's triggers claim: webhook
paths, schedules), `workflow_runs.error_workflow_pending`, and compares
idempotency keys by code point on PostgreSQL (`latest_idempotency_key` reads a
range of them). Version 6 adds the runs' parent (sub-workflows), depth, usage,
cost, `queued_reason` and `admitted` (concurrency limits). The schema is created
on `start()` and upgraded by `migrate()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import orjson
from sqlalchemy import (
    Column,
    Dialect,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    literal_column,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import (
    URL,
    Connection,
    CursorResult,
    Engine,
    RootTransaction,
    RowMapping,
    make_url,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import ColumnElement, Executable, Select

from ductwork.models import (
    Checkpoint,
    Event,
    NodeState,
    NodeStatus,
    Run,
    RunStatus,
    RunSummary,
    Workflow,
    WorkflowDefinition,
    utcnow,
)
from ductwork.retention import PrunePlan
from ductwork.security.models import AuditEntry
from ductwork.store import sql_postgres, sql_retention, sqlite_ddl
from ductwork.store._codec import (
    FINISHED_RUN_STATUSES,
    KNOWN_RUN_FIELDS,
    QUEUED_GRACE,
    adopt_known,
    aware,
    declares_node,
    dumps,
    find_nul,
    loads,
    prefix_end,
    resume_outcome,
    run_field_values,
)
from ductwork.store.base import (
    Admission,
    DuplicateRun,
    LeaseLost,
    ResumeOutcome,
    RunCursor,
    RunQuery,
    StoreError,
    TriggerConflict,
    UnstorableValue,
)
from ductwork.store.definitions import parse_definition
from ductwork.store.sql_schema import (
    HOT,
    HotQueries,
    JsonType,
    UTCDateTime,
    _Backend,
    _Prepared,
    _Query,
    _QueryResult,
    _RawSession,
    _security_tables_v3,
    _Session,
    _trigger_table_v5,
    hot,
    metadata,
    node_states,
    run_events,
    schema_version,
    workflow_runs,
    workflow_triggers,
    workflow_versions,
    workflows,
)
from ductwork.store.sql_security import INSERT_AUDIT, SqlSecurityStore
from ductwork.store.sqlite_wal import WalCheckpointer
from ductwork.triggers.spec import normalize_hook_path, trigger_index
from ductwork.usage import UsageDay
from ductwork.versions import WorkflowVersionInfo

if TYPE_CHECKING:
    # sqlalchemy.ext.asyncio imports the ORM (~0.3 s); only PostgreSQL needs it.
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")

__all__ = ["SCHEMA_VERSION", "UPGRADES", "SqlStore", "metadata", "migrate"]


# Migrations ------------------------------------------------------------------------

Upgrade = Callable[[Connection], None]

# workflow_runs as schema version 2 has it, for SQLite, which cannot drop a
# UNIQUE constraint in place: the table is copied into this shape. Frozen here,
# not derived from `workflow_runs` (sql_schema), so later versions cannot change what
# this step does.
_SQLITE_RUNS_V2 = """
CREATE TABLE workflow_runs_v2 (
    execution_id VARCHAR(64) NOT NULL,
    workflow_id VARCHAR(64) NOT NULL,
    workflow_version INTEGER NOT NULL,
    status VARCHAR(16) NOT NULL,
    definition JSON NOT NULL,
    variables JSON NOT NULL,
    result JSON,
    error TEXT,
    created_at DATETIME NOT NULL,
    start_time DATETIME,
    end_time DATETIME,
    wake_at DATETIME,
    cancel_requested BOOLEAN NOT NULL,
    idempotency_key VARCHAR(255),
    lease_owner VARCHAR(255),
    lease_expires_at DATETIME,
    last_seq INTEGER NOT NULL,
    redrives INTEGER DEFAULT 0 NOT NULL,
    dead_letter BOOLEAN DEFAULT 0 NOT NULL,
    PRIMARY KEY (execution_id)
)
"""
_RUNS_V1_COLUMNS = (
    "execution_id, workflow_id, workflow_version, status, definition, variables, result, "
    "error, created_at, start_time, end_time, wake_at, cancel_requested, idempotency_key, "
    "lease_owner, lease_expires_at, last_seq"
)
_RUNS_V2_INDEXES = (
    "CREATE UNIQUE INDEX ux_workflow_runs_idempotency"
    " ON workflow_runs (workflow_id, idempotency_key)",
    "CREATE INDEX ix_workflow_runs_dead_letter ON workflow_runs (created_at) WHERE dead_letter",
)


def _upgrade_to_2(connection: Connection) -> None:
    """Runs get `redrives` and `dead_letter`; idempotency keys become unique per workflow."""
    if connection.dialect.name == "sqlite":
        # DROP TABLE would cascade into node_states and run_events with foreign
        # keys on; SQLite cannot turn them off inside a transaction, so the
        # caller must have (SqlStore.start does).
        if connection.exec_driver_sql("PRAGMA foreign_keys").scalar():
            raise StoreError("upgrading a SQLite schema needs PRAGMA foreign_keys=OFF")
        connection.exec_driver_sql(_SQLITE_RUNS_V2)
        connection.exec_driver_sql(
            f"INSERT INTO workflow_runs_v2 ({_RUNS_V1_COLUMNS}) "
            f"SELECT {_RUNS_V1_COLUMNS} FROM workflow_runs"
        )
        connection.exec_driver_sql("DROP TABLE workflow_runs")
        connection.exec_driver_sql("ALTER TABLE workflow_runs_v2 RENAME TO workflow_runs")
        for index in (
            "CREATE INDEX ix_workflow_runs_workflow_id ON workflow_runs (workflow_id, created_at)",
            "CREATE INDEX ix_workflow_runs_status ON workflow_runs (status)",
            *_RUNS_V2_INDEXES,
        ):
            connection.exec_driver_sql(index)
        if connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
            raise StoreError("upgrading the SQLite schema broke a foreign key; rolled back")
        return
    connection.exec_driver_sql(
        "ALTER TABLE workflow_runs ADD COLUMN redrives INTEGER DEFAULT 0 NOT NULL"
    )
    connection.exec_driver_sql(
        "ALTER TABLE workflow_runs ADD COLUMN dead_letter BOOLEAN DEFAULT false NOT NULL"
    )
    for constraint in inspect(connection).get_unique_constraints("workflow_runs"):
        if constraint["column_names"] == ["idempotency_key"] and constraint["name"]:
            connection.exec_driver_sql(
                f'ALTER TABLE workflow_runs DROP CONSTRAINT "{constraint["name"]}"'
            )
    for index in _RUNS_V2_INDEXES:
        connection.exec_driver_sql(index)


def _upgrade_to_3(connection: Connection) -> None:
    """The security tables: users, API keys, sessions, credentials, audit log, setup token."""
    version_3 = MetaData()
    _security_tables_v3(version_3)
    version_3.create_all(connection)


def _upgrade_to_4(connection: Connection) -> None:
    """Runs get `trigger` (what started them) and the indexes of the runs list."""
    json_type = "JSONB" if connection.dialect.name == "postgresql" else "JSON"
    connection.exec_driver_sql(f'ALTER TABLE workflow_runs ADD COLUMN "trigger" {json_type}')
    connection.exec_driver_sql("DROP INDEX ix_workflow_runs_status")
    connection.exec_driver_sql(
        "CREATE INDEX ix_workflow_runs_status ON workflow_runs (status, created_at)"
    )
    connection.exec_driver_sql(
        "CREATE INDEX ix_workflow_runs_created_at ON workflow_runs (created_at)"
    )


def _upgrade_to_5(connection: Connection) -> None:
    """The trigger index, backfilled; runs' `error_workflow_pending`; keys compared by code point.

    Code point order for idempotency keys matters on PostgreSQL only (SQLite's
    BINARY collation is that already).
    """
    version_5 = MetaData()
    # Only for the foreign key to resolve; the table exists and is not touched.
    Table("workflows", version_5, Column("id", String(64), primary_key=True))
    triggers = _trigger_table_v5(version_5)
    triggers.create(connection)
    postgres = connection.dialect.name == "postgresql"
    connection.exec_driver_sql(
        "ALTER TABLE workflow_runs ADD COLUMN error_workflow_pending BOOLEAN DEFAULT "
        + ("false" if postgres else "0")
        + " NOT NULL"
    )
    connection.exec_driver_sql(
        "CREATE INDEX ix_workflow_runs_error_workflow_pending ON workflow_runs (created_at)"
        " WHERE error_workflow_pending"
    )
    if postgres:
        # Rebuilds ux_workflow_runs_idempotency in code point order.
        connection.exec_driver_sql(
            'ALTER TABLE workflow_runs ALTER COLUMN idempotency_key TYPE VARCHAR(255) COLLATE "C"'
        )
    _backfill_triggers(connection, triggers)


def _backfill_triggers(connection: Connection, triggers: Table) -> None:
    """Index the triggers of workflows saved before the index existed.

    Oldest first, and a path claimed twice keeps its first workflow (nothing
    refused duplicates then); the other one gets the conflict when next saved.
    A definition that no longer validates is skipped: it cannot be loaded, and
    saving it again writes its rows.
    """
    stored = Table(
        "workflows",
        MetaData(),
        Column("id", String(64)),
        Column("definition", JsonType),
        Column("created_at", UTCDateTime),
    )
    claim = (postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert)(
        triggers
    ).on_conflict_do_nothing()
    rows = connection.execute(
        select(stored.c.id, stored.c.definition).order_by(stored.c.created_at, stored.c.id)
    )
    for workflow_id, dumped in rows.all():
        if not isinstance(dumped, dict) or not dumped.get("triggers"):
            continue
        try:
            definition = WorkflowDefinition.model_validate(dumped)
        except ValueError:
            continue
        for type_, key in trigger_index(workflow_id, definition):
            connection.execute(claim, {"workflow_id": workflow_id, "type": type_, "key": key})


def _upgrade_to_6(connection: Connection) -> None:
    """Runs get their parent run (sub-workflows), depth, usage and cost, and the
    concurrency limit's `queued_reason` and `admitted`."""
    postgres = connection.dialect.name == "postgresql"
    json_type = "JSONB" if postgres else "JSON"
    false_ = "false" if postgres else "0"
    for column in (
        "parent_execution_id VARCHAR(64)",
        "parent_node_id VARCHAR(200)",
        "depth INTEGER DEFAULT 0 NOT NULL",
        f"usage {json_type}",
        "cost FLOAT DEFAULT 0 NOT NULL",
        "queued_reason TEXT",
        f"admitted BOOLEAN DEFAULT {false_} NOT NULL",
    ):
        connection.exec_driver_sql(f"ALTER TABLE workflow_runs ADD COLUMN {column}")
    connection.exec_driver_sql(
        "CREATE INDEX ix_workflow_runs_parent ON workflow_runs (parent_execution_id)"
    )


UPGRADES: list[Upgrade] = [
    _upgrade_to_2,
    _upgrade_to_3,
    _upgrade_to_4,
    _upgrade_to_5,
    _upgrade_to_6,
]
"""Schema upgrades in order: `UPGRADES[0]` takes version 1 to 2, and so on.

To change the schema, change the tables in sql_schema.py (what a new database gets)
and append the function that brings an existing database to the same shape.
"""

SCHEMA_VERSION = 1 + len(UPGRADES)

# Any constant works; it only has to be the same in every ductwork process.
_MIGRATION_LOCK_KEY = 0x6475637477726B  # "ductwrk"


def migrate(connection: Connection, upgrades: Sequence[Upgrade] = UPGRADES) -> int:
    """Create or upgrade the schema inside the caller's transaction; returns the new version.

    A new database gets the current tables and is stamped with the latest
    version; an older one runs the upgrades it lacks, in order. Processes
    starting together are serialised (an advisory lock on PostgreSQL, the write
    lock on SQLite), so each upgrade runs once.
    """
    latest = 1 + len(upgrades)
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    elif connection.exec_driver_sql("SELECT 1 FROM sqlite_master LIMIT 1").first() is None:
        # A new SQLite database (every `ductwork run`'s scratch store): the same tables as
        # create_all makes, from text, without SQLAlchemy's DDL compiler (store/sqlite_ddl.py).
        for statement in sqlite_ddl.statements():
            connection.exec_driver_sql(statement)
        connection.execute(insert(schema_version).values(id=1, version=latest))
        return latest
    schema_version.create(connection, checkfirst=True)
    current = connection.execute(
        select(schema_version.c.version).where(schema_version.c.id == 1)
    ).scalar()
    if current is None:
        metadata.create_all(connection)
        connection.execute(insert(schema_version).values(id=1, version=latest))
        return latest
    if current > latest:
        raise StoreError(
            f"the database schema is version {current}, newer than this ductwork knows ({latest})"
        )
    for version in range(current, latest):
        upgrades[version - 1](connection)
    if current != latest:
        connection.execute(
            update(schema_version).where(schema_version.c.id == 1).values(version=latest)
        )
    return latest


# Backends: the same statements on a sync (SQLite) or async (PostgreSQL) connection.


class _SyncSession(_Session):
    __slots__ = ("_connection",)

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> CursorResult[Any]:
        return self._connection.execute(statement, parameters)

    async def run_sync(self, fn: Callable[[Connection], T]) -> T:
        return fn(self._connection)


class _SqliteSession(_Session):
    """A SQLite transaction begun on the driver: marked statements (`hot`) run there
    through their `_Query`; any other statement joins it through SQLAlchemy, whose own
    transaction is begun only then (the `begin` listener sees one is open already).

    `began` False: a lone read, not begun (`transaction(write=False, single=True)`):
    its one statement runs in a read transaction of its own.
    """

    __slots__ = ("_backend", "_began", "_connection", "_db", "_sa_transaction")

    def __init__(
        self,
        backend: _SqliteBackend,
        connection: Connection,
        db: sqlite3.Connection,
        *,
        began: bool = True,
    ) -> None:
        self._backend = backend
        self._connection = connection
        self._db = db
        self._sa_transaction: RootTransaction | None = None
        self._began = began

    def _joined(self) -> Connection:
        if self._sa_transaction is None:
            self._sa_transaction = self._connection.begin()
        return self._connection

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> CursorResult[Any]:
        rows_in: Sequence[Mapping[str, Any]] | None = None
        single: Mapping[str, Any] = {}
        if isinstance(parameters, Mapping):
            single = parameters
        else:
            rows_in = parameters
        query = None
        if statement.get_execution_options().get(HOT):
            query = self._backend.query(statement, rows_in[0] if rows_in else single)
        if query is None:
            return self._joined().execute(statement, parameters)
        try:
            if rows_in is not None:
                cursor = self._db.executemany(query.sql, [query.args(row) for row in rows_in])
            else:
                cursor = self._db.execute(query.sql, query.args(single))
            rows = query.rows(cursor.fetchall()) if query.returns_rows else []
        except sqlite3.Error as exc:
            # As SQLAlchemy would raise it (IntegrityError, OperationalError, ...).
            raise DBAPIError.instance(
                query.sql, parameters, exc, sqlite3.Error, dialect=self._backend.dialect
            ) from exc
        result: Any = _QueryResult(rows, cursor.rowcount)
        return result  # type: ignore[no-any-return]

    async def run_sync(self, fn: Callable[[Connection], T]) -> T:
        return fn(self._joined())

    def commit(self) -> None:
        if self._sa_transaction is not None:
            self._sa_transaction.commit()
        elif self._began:
            self._db.execute("COMMIT")

    def rollback(self) -> None:
        if self._sa_transaction is not None and self._sa_transaction.is_active:
            self._sa_transaction.rollback()
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")


class _AsyncSession(_Session):
    __slots__ = ("_connection",)

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> CursorResult[Any]:
        return await self._connection.execute(statement, parameters)

    async def run_sync(self, fn: Callable[[Connection], T]) -> T:
        return await self._connection.run_sync(fn)


class _SqliteRawSession(_RawSession):
    __slots__ = ("_db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    async def execute(self, prepared: _Prepared, params: Mapping[str, Any]) -> int:
        return self._db.execute(prepared.sql, prepared.args(params)).rowcount

    async def executemany(self, prepared: _Prepared, rows: Sequence[Mapping[str, Any]]) -> None:
        self._db.executemany(prepared.sql, [prepared.args(row) for row in rows])


class _AsyncpgRawSession(_RawSession):
    __slots__ = ("_db",)

    def __init__(self, db: Any) -> None:
        self._db = db

    @property
    def driver(self) -> Any:
        """The asyncpg connection, inside the transaction."""
        return self._db

    async def execute(self, prepared: _Prepared, params: Mapping[str, Any]) -> int:
        status: str = await self._db.execute(prepared.sql, *prepared.args(params))
        return sql_postgres.command_rowcount(status)

    async def executemany(self, prepared: _Prepared, rows: Sequence[Mapping[str, Any]]) -> None:
        await self._db.executemany(prepared.sql, [prepared.args(row) for row in rows])


def _make_parent_directory(database: str | None) -> None:
    """Create the directory a SQLite file lives in (SQLite will not)."""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _lower(value: object) -> str | None:
    """SQLite's lower() with Unicode case folding (NULL stays NULL, like the built-in)."""
    if value is None:
        return None
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return text.lower()


class _SqliteBackend(_Backend):
    dialect_name = "sqlite"
    refused_errors = (sqlite3.IntegrityError, sqlite3.DataError)

    def __init__(self, url: URL, busy_timeout_ms: int, synchronous: str = "normal") -> None:
        self._url = url
        self._busy_timeout_ms = busy_timeout_ms
        self._synchronous = synchronous
        self._engine: Engine | None = None
        self._connection: Connection | None = None
        self._db: sqlite3.Connection | None = None
        self._begin_sql = "BEGIN"
        self._checkpointer: WalCheckpointer | None = None
        self._queries: HotQueries | None = None
        # Transactions never await anything that suspends, so this lock is never
        # contended; it only guarantees that stays true if that ever changes.
        self._lock = asyncio.Lock()

    @property
    def dialect(self) -> Dialect:
        if self._engine is None:
            raise StoreError("the store is not started")
        return self._engine.dialect

    async def start(self) -> None:
        _make_parent_directory(self._url.database)
        engine = create_engine(
            self._url,
            poolclass=StaticPool,
            json_serializer=dumps,
            json_deserializer=loads,
        )
        event.listen(engine, "connect", self._on_connect)
        event.listen(engine, "begin", self._on_begin)
        self._engine = engine
        self._queries = HotQueries(engine.dialect)
        self._connection = engine.connect()
        self._db = self._connection.connection.driver_connection
        database = self._url.database
        if (
            self._db is not None
            and database
            and database != ":memory:"
            and not database.startswith("file:")
        ):
            self._checkpointer = WalCheckpointer(database, self._busy_timeout_ms)
            self._checkpointer.start(self._db)

    def _on_connect(self, db: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control away from the driver so that writes can BEGIN
        # IMMEDIATE: a deferred transaction that upgrades to a write can fail
        # with SQLITE_BUSY at once, without honouring busy_timeout.
        db.isolation_level = None
        for pragma in (
            # Before the switch to WAL: on a new file that switch syncs the file (~15-25 ms
            # here) unless synchronous is off (`ductwork run`'s scratch file: see cli.run).
            f"PRAGMA synchronous={self._synchronous.upper()}",
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}",
        ):
            db.execute(pragma)
        # SQLite's own lower() folds ASCII only, so a search for "é" would miss "É";
        # Python's folds every letter, as PostgreSQL's ILIKE and MongoDB's /i do.
        db.create_function("lower", 1, _lower, deterministic=True)

    def _on_begin(self, connection: Connection) -> None:
        db = connection.connection.driver_connection
        if db is None:
            raise StoreError("the SQLite connection is closed")
        if not db.in_transaction:  # else a `_SqliteSession` began it
            db.execute(self._begin_sql)

    def query(self, statement: Executable, params: Mapping[str, Any]) -> _Query | None:
        """The `_Query` of a marked statement (None: run it through SQLAlchemy)."""
        if self._queries is None:
            raise StoreError("the store is not started")
        return self._queries.query(statement, params)

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop(self._db)
            self._checkpointer = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
            self._db = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextlib.asynccontextmanager
    async def transaction(self, *, write: bool, single: bool = False) -> AsyncIterator[_Session]:
        connection = self._connection
        if connection is None:
            raise StoreError("the store is not started")
        db = self._db
        if db is None:
            raise StoreError("the store is not started")
        async with self._lock:
            self._begin_sql = "BEGIN IMMEDIATE" if write else "BEGIN"
            # A lone read needs no BEGIN/COMMIT (two statements fewer): SQLite runs a
            # statement outside a transaction in a read transaction of its own, one
            # snapshot. A statement run through SQLAlchemy still begins one (`_on_begin`).
            lone_read = single and not write
            if not lone_read:
                db.execute(self._begin_sql)
            session = _SqliteSession(self, connection, db, began=not lone_read)
            try:
                yield session
                session.commit()
            finally:
                # After an error, or a COMMIT that failed.
                session.rollback()

    @contextlib.asynccontextmanager
    async def schema_transaction(self) -> AsyncIterator[_Session]:
        # Upgrades may rebuild a table, which SQLite only allows safely with
        # foreign keys off, and that cannot be switched inside a transaction.
        db = self._db
        if db is None:
            raise StoreError("the store is not started")
        db.execute("PRAGMA foreign_keys=OFF")
        try:
            async with self.transaction(write=True) as session:
                yield session
        finally:
            db.execute("PRAGMA foreign_keys=ON")

    @contextlib.asynccontextmanager
    async def raw_transaction(self) -> AsyncIterator[_RawSession]:
        db = self._db
        if db is None:
            raise StoreError("the store is not started")
        async with self._lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteRawSession(db)
                db.execute("COMMIT")
            finally:
                # After an error, or a COMMIT that failed; SQLite may have rolled
                # back by itself already.
                if db.in_transaction:
                    db.execute("ROLLBACK")


class _PostgresBackend(_Backend):
    dialect_name = "postgresql"

    def __init__(self, url: URL, pool_size: int, max_overflow: int) -> None:
        # asyncpg is imported by a PostgreSQL store only: ~20 ms of every cold start on
        # SQLite otherwise (tests/test_cold_imports.py).
        import asyncpg  # type: ignore[import-untyped]

        self.refused_errors = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError)
        # NUL in a JSONB string (22P05), NUL in a text column (22021).
        self.unstorable_errors = (
            asyncpg.UntranslatableCharacterError,
            asyncpg.CharacterNotInRepertoireError,
        )
        self._url = url
        self._pool_size = pool_size
        self._max_overflow = max_overflow
        self._engine: AsyncEngine | None = None
        self._read_engine: AsyncEngine | None = None
        self._autocommit_engine: AsyncEngine | None = None
        self._hot: HotQueries | None = None

    @property
    def dialect(self) -> Dialect:
        if self._engine is None:
            raise StoreError("the store is not started")
        return self._engine.dialect

    async def start(self) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        self._engine = create_async_engine(
            self._url,
            pool_size=self._pool_size,
            max_overflow=self._max_overflow,
            json_serializer=dumps,
            json_deserializer=loads,
        )
        # Reads of a run take several statements; one snapshot keeps them consistent.
        self._read_engine = self._engine.execution_options(isolation_level="REPEATABLE READ")
        # One-statement work needs no BEGIN/COMMIT round trips.
        self._autocommit_engine = self._engine.execution_options(isolation_level="AUTOCOMMIT")
        self._hot = HotQueries(self._engine.dialect, sql_postgres.result_type_oid)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
            self._read_engine = None
            self._autocommit_engine = None

    @contextlib.asynccontextmanager
    async def transaction(self, *, write: bool, single: bool = False) -> AsyncIterator[_Session]:
        if single:
            if self._autocommit_engine is None or self._hot is None:
                raise StoreError("the store is not started")
            async with self._autocommit_engine.connect() as connection:
                # Hot statements on the driver (store/sql_postgres.py).
                session = sql_postgres.DriverSession(connection, self._hot)
                try:
                    yield session
                except BaseException as exc:
                    if session.used_driver is not None:
                        error = session.driver_error or exc
                        await _invalidate_if_broken(connection, session.used_driver, error)
                    raise
            return
        engine = self._engine if write else self._read_engine
        if engine is None:
            raise StoreError("the store is not started")
        async with engine.begin() as connection:
            yield _AsyncSession(connection)

    @contextlib.asynccontextmanager
    async def raw_transaction(self) -> AsyncIterator[_RawSession]:
        if self._engine is None:
            raise StoreError("the store is not started")
        # A pooled connection, but the transaction is asyncpg's own: SQLAlchemy
        # only begins one lazily on its first statement, and none is run here.
        async with self._engine.connect() as connection:
            db: Any = (await connection.get_raw_connection()).driver_connection
            try:
                async with db.transaction():
                    yield _AsyncpgRawSession(db)
            except BaseException as exc:
                await _invalidate_if_broken(connection, db, exc)
                raise

    @contextlib.asynccontextmanager
    async def raw_connection(self) -> AsyncIterator[Any]:
        """A pooled asyncpg connection outside any transaction (each statement commits)."""
        if self._engine is None:
            raise StoreError("the store is not started")
        async with self._engine.connect() as connection:
            db: Any = (await connection.get_raw_connection()).driver_connection
            try:
                yield db
            except BaseException as exc:
                await _invalidate_if_broken(connection, db, exc)
                raise


async def _invalidate_if_broken(connection: AsyncConnection, db: Any, exc: BaseException) -> None:
    """Drop a pooled connection used through asyncpg directly when `exc` broke it or left
    it inside a transaction (a cancellation mid-rollback): the pool cannot tell, outside
    SQLAlchemy."""
    import asyncpg

    broken = isinstance(exc, (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError))
    if broken or db.is_closed() or db.is_in_transaction():
        await connection.invalidate()


_SQLITE_SYNCHRONOUS = ("off", "normal", "full", "extra")
"""SQLite's `PRAGMA synchronous` levels a URL may ask for (`sqlite:///f.db?synchronous=off`)."""


def _backend_for(url: str, busy_timeout_ms: int, pool_size: int, max_overflow: int) -> _Backend:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.get_driver_name() not in ("pysqlite", "sqlite"):
            raise ValueError(f"SQLite URLs use the built-in driver (sqlite:///path), not {url!r}")
        synchronous = parsed.query.get("synchronous", "normal")
        if not isinstance(synchronous, str) or synchronous.lower() not in _SQLITE_SYNCHRONOUS:
            raise ValueError(
                f"synchronous= in a SQLite URL is one of {', '.join(_SQLITE_SYNCHRONOUS)},"
                f" not {synchronous!r}"
            )
        return _SqliteBackend(
            parsed.set(drivername="sqlite").difference_update_query(["synchronous"]),
            busy_timeout_ms,
            synchronous=synchronous.lower(),
        )
    if backend in ("postgresql", "postgres"):
        if parsed.drivername not in ("postgresql", "postgres", "postgresql+asyncpg"):
            raise ValueError(f"PostgreSQL URLs use asyncpg (postgresql://...), not {url!r}")
        return _PostgresBackend(
            parsed.set(drivername="postgresql+asyncpg"), pool_size, max_overflow
        )
    raise ValueError(f"not a SQLite or PostgreSQL URL: {url!r}")


# The store ---------------------------------------------------------------------------

_R = workflow_runs.c
_NODE_STATE_COLUMNS = tuple(c.name for c in node_states.c if not c.primary_key)


def _lease_free(now: datetime | ColumnElement[Any]) -> ColumnElement[bool]:
    """Nobody holds the lease, or the holder let it expire."""
    return or_(_R.lease_owner.is_(None), _R.lease_expires_at.is_(None), _R.lease_expires_at < now)


_SELECT_WORKFLOW = hot(select(workflows).where(workflows.c.id == bindparam("id")))
_SELECT_RUN = hot(select(workflow_runs).where(_R.execution_id == bindparam("eid")))
_SELECT_RUN_BY_KEY = hot(
    select(workflow_runs).where(
        _R.workflow_id == bindparam("wid"), _R.idempotency_key == bindparam("key")
    )
)
_SELECT_STATES = hot(select(node_states).where(node_states.c.execution_id == bindparam("eid")))
_SELECT_STATES_IN = select(node_states).where(
    node_states.c.execution_id.in_(bindparam("eids", expanding=True))
)
_SELECT_EVENTS = hot(
    select(run_events)
    .where(run_events.c.execution_id == bindparam("eid"), run_events.c.seq > bindparam("after"))
    .order_by(run_events.c.seq)
)
# A page of them: a range of the (execution_id, seq) primary key, however long the run.
_SELECT_EVENTS_PAGE = _SELECT_EVENTS.limit(bindparam("limit", type_=Integer))
_SELECT_ALL_EVENTS = hot(
    select(run_events)
    .where(run_events.c.execution_id == bindparam("eid"))
    .order_by(run_events.c.seq)
)
_SELECT_EVENTS_IN = (
    select(run_events)
    .where(run_events.c.execution_id.in_(bindparam("eids", expanding=True)))
    .order_by(run_events.c.execution_id, run_events.c.seq)
)
_INSERT_EVENTS = hot(insert(run_events))
_INSERT_RUN = hot(insert(workflow_runs))
_ACQUIRE_LEASE = hot(
    update(workflow_runs)
    .where(
        _R.execution_id == bindparam("eid"),
        _R.status.not_in(FINISHED_RUN_STATUSES),
        or_(_R.lease_owner == bindparam("owner"), _lease_free(bindparam("now", type_=UTCDateTime))),
    )
    .values(
        lease_owner=bindparam("owner"),
        lease_expires_at=bindparam("expires", type_=UTCDateTime),
        # SET reads the row as it was: a live lease of another owner never gets
        # here, so another owner's lease being taken means it had expired.
        redrives=_R.redrives
        + case(
            (
                and_(
                    _R.lease_owner.is_not(None),
                    _R.lease_owner != bindparam("owner"),
                    _R.lease_expires_at.is_not(None),
                ),
                1,
            ),
            else_=0,
        ),
    )
)
_ACQUIRE_LEASE_RETURNING = _ACQUIRE_LEASE.returning(*workflow_runs.c)
# With the run its creator holds (`adopt_known`): the large columns are not read back.
_ACQUIRE_LEASE_RETURNING_SMALL = _ACQUIRE_LEASE.returning(
    *(column for column in workflow_runs.c if column.name not in KNOWN_RUN_FIELDS)
)
_RENEW_LEASE = hot(
    update(workflow_runs)
    .where(_R.execution_id == bindparam("eid"), _R.lease_owner == bindparam("owner"))
    .values(lease_expires_at=bindparam("expires", type_=UTCDateTime))
)
_RELEASE_LEASE = hot(
    update(workflow_runs)
    .where(_R.execution_id == bindparam("eid"), _R.lease_owner == bindparam("owner"))
    .values(lease_owner=None, lease_expires_at=None)
)
_SELECT_CANCEL = hot(select(_R.cancel_requested).where(_R.execution_id == bindparam("eid")))


_T = workflow_triggers.c
_DELETE_TRIGGERS = delete(workflow_triggers).where(_T.workflow_id == bindparam("wid"))
_TRIGGER_HOLDER = select(_T.workflow_id).where(
    _T.type == bindparam("type"), _T.key == bindparam("key")
)
_SELECT_HOOK = (
    select(workflows)
    .join(workflow_triggers, _T.workflow_id == workflows.c.id)
    .where(_T.type == "webhook", _T.key == bindparam("path"))
)
_SELECT_SCHEDULED = (
    select(workflows)
    .join(workflow_triggers, _T.workflow_id == workflows.c.id)
    .where(_T.type == "schedule")
    .order_by(workflows.c.created_at, workflows.c.id)
)
# A range on the unique (workflow_id, idempotency_key) index, read backwards: one probe.
_LATEST_KEY = (
    select(_R.idempotency_key)
    .where(_R.workflow_id == bindparam("wid"), _R.idempotency_key >= bindparam("low"))
    .order_by(_R.idempotency_key.desc())
    .limit(1)
)
_LATEST_KEY_BELOW = _LATEST_KEY.where(_R.idempotency_key < bindparam("high"))
_N = node_states.c
# FOR UPDATE on PostgreSQL (SQLite renders none: its write transaction holds the database).
_SELECT_NODE_TO_RESUME = (
    select(_N.status, _N.meta, _N.wake_at)
    .where(_N.execution_id == bindparam("eid"), _N.node_id == bindparam("nid"))
    .with_for_update()
)
_SELECT_RUN_DEFINITION = select(_R.definition).where(_R.execution_id == bindparam("eid"))
_SET_RESUMED = (
    update(node_states)
    .where(_N.execution_id == bindparam("eid"), _N.node_id == bindparam("nid"))
    .values(meta=bindparam("p_meta", type_=JsonType))
)
_WAKE_RUN = (
    update(workflow_runs)
    .where(_R.execution_id == bindparam("eid"))
    .values(wake_at=bindparam("p_now", type_=UTCDateTime))
)
# How often a claim is tried again when its holder let go between two statements.
_CLAIM_ATTEMPTS = 3

# Concurrency limits (issue 11): statuses of runs that may hold a slot (an IN list, so
# the (status, created_at) index finds the few unfinished runs), and advisory locks.
_UNFINISHED_RUN_STATUSES = [
    RunStatus.QUEUED.value,
    RunStatus.RUNNING.value,
    RunStatus.WAITING.value,
]
_GLOBAL_ADMISSION_LOCK = 0x6475637461646D  # "ductadm"


def _admission_lock_key(workflow_id: str) -> int:
    """A stable signed 64-bit advisory lock key for a workflow's admissions (the same in
    every process; two workflows sharing one only serialise their admissions)."""
    digest = hashlib.blake2b(f"admission:{workflow_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _run_filters(query: RunQuery) -> list[ColumnElement[bool]]:
    """`RunQuery` as WHERE clauses (none: every run)."""
    clauses: list[ColumnElement[bool]] = []
    if query.workflow_id is not None:
        clauses.append(_R.workflow_id == query.workflow_id)
    if query.status is not None:
        clauses.append(_R.status == query.status.value)
    if query.dead_letter is not None:
        clauses.append(_flag(_R.dead_letter, query.dead_letter))
    if query.trigger_type is not None:
        clauses.append(_R.trigger["type"].as_string() == query.trigger_type)
    if query.error_workflow_pending is not None:
        clauses.append(_flag(_R.error_workflow_pending, query.error_workflow_pending))
    if query.parent_execution_id is not None:
        clauses.append(_R.parent_execution_id == query.parent_execution_id)
    return clauses


def _after_cursor() -> ColumnElement[bool]:
    """Runs after the cursor (`after_at`, `after_id`) in the runs' order (both descending).

    Written as `created_at <= :at AND (created_at < :at OR execution_id < :id)` rather
    than a row-value comparison: the first term is a plain range the (..., created_at)
    indexes serve on SQLite and PostgreSQL alike, the second only sorts out the ties.
    """
    at = bindparam("after_at", type_=UTCDateTime)
    return and_(
        _R.created_at <= at,
        or_(_R.created_at < at, _R.execution_id < bindparam("after_id", type_=String)),
    )


def find_runs_statement(query: RunQuery, *, keyset: bool = False) -> Select[Any]:
    """The page of run rows `find_runs` reads (binds `limit` and `offset`; with `keyset`,
    also the cursor's `after_at` and `after_id`)."""
    filters = _run_filters(query)
    if keyset:
        filters.append(_after_cursor())
    return (
        select(workflow_runs)
        .where(*filters)
        .order_by(_R.created_at.desc(), _R.execution_id.desc())
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )


def _flag(column: Column[bool], value: bool) -> ColumnElement[bool]:
    """A boolean column is true (written as the bare column) or false.

    SQLAlchemy writes a Boolean column as `column = 1` on SQLite, which does not
    prove a partial index's `WHERE column`, so SQLite would never use the index;
    an untyped column of the same name is written as it is.
    """
    if not value:
        return not_(column)
    bare: ColumnElement[bool] = literal_column(f"{column.table.name}.{column.name}")
    return bare


_latest = workflow_runs.alias("latest")
_SELECT_LATEST_RUNS = select(
    _R.workflow_id, _R.execution_id, _R.status, _R.created_at, _R.start_time, _R.end_time
).where(
    _R.execution_id.in_(
        select(
            select(_latest.c.execution_id)
            .where(_latest.c.workflow_id == workflows.c.id)
            .order_by(_latest.c.created_at.desc(), _latest.c.execution_id.desc())
            .limit(1)
            .scalar_subquery()
        ).where(workflows.c.id.in_(bindparam("wids", expanding=True)))
    )
)


def _utc_day(dialect_name: str) -> ColumnElement[str]:
    """A run's `created_at` as its UTC day, `YYYY-MM-DD` (to group usage by)."""
    if dialect_name == "postgresql":
        return func.to_char(func.timezone("UTC", _R.created_at), "YYYY-MM-DD")
    # SQLite holds UTCDateTime as naive UTC text, which date() reads as it is.
    return func.date(_R.created_at)


def _strip(row: Mapping[Any, Any], *keys: str) -> dict[str, Any]:
    data = dict(row)
    for key in keys:
        del data[key]
    return data


# The rows of a checkpoint are read off the models' attributes: `model_dump` copied
# every output, meta and event data (recursively) only for the bind processors to
# encode the copy. tests/test_store_sqlite_query.py checks that these list every field.
def _node_row(
    execution_id: str,
    node_id: str,
    state: NodeState,
    encoded: Mapping[int, orjson.Fragment] | None = None,
) -> dict[str, Any]:
    output = state.output
    if encoded and output is not None:
        # Encoded by the engine's size check already (`Checkpoint.output_json`): the JSON
        # serializer copies a Fragment's bytes as they are.
        output = encoded.get(id(output), output)
    return {
        "execution_id": execution_id,
        "node_id": node_id,
        "status": NodeStatus(state.status).value,
        "output": output,
        "error": state.error,
        "cached": state.cached,
        "latency_ms": state.latency_ms,
        "attempts": state.attempts,
        "started_at": state.started_at,
        "finished_at": state.finished_at,
        "branch": state.branch,
        "wake_at": state.wake_at,
        "meta": state.meta,
    }


def _event_row(
    execution_id: str, event_: Event, encoded: Mapping[int, orjson.Fragment] | None = None
) -> dict[str, Any]:
    data = event_.data
    if encoded:
        # A node_completed event carries the output its node state does: encoded once.
        output = data.get("output")
        fragment = encoded.get(id(output)) if output is not None else None
        if fragment is not None:
            data = {**data, "output": fragment}
    return {
        "execution_id": execution_id,
        "seq": event_.seq,
        "type": event_.type,
        "node_id": event_.node_id,
        "timestamp": event_.timestamp,
        "data": data,
    }


def _encoded_outputs(checkpoint: Checkpoint) -> dict[int, orjson.Fragment]:
    """id(output) -> its JSON, for the outputs of `Checkpoint.output_json` the checkpoint's
    states still hold (the checkpoint keeps them alive, so their ids are theirs)."""
    states = checkpoint.node_states
    out: dict[int, orjson.Fragment] = {}
    for key, (output, json_text) in checkpoint.output_json.items():
        state = states.get(key)
        if state is not None and state.output is output and output is not None:
            out[id(output)] = orjson.Fragment(json_text)
    return out


def _unmatched(execution_id: str, owner: str | None) -> StoreError:
    """What a fenced run UPDATE that matched no row means: the lease is gone (or, without
    an owner to fence with, the run is)."""
    if owner is not None:
        return LeaseLost(f"{owner} no longer holds run {execution_id}")
    return StoreError(f"unknown run {execution_id}")


def _run_names(items: Sequence[tuple[str, Checkpoint]]) -> str:
    """The runs of a checkpoint batch, for an error message."""
    return ", ".join(dict.fromkeys(execution_id for execution_id, _ in items))


def _checkpoint_values(checkpoint: Checkpoint) -> Iterable[tuple[str, Any]]:
    """(where, value) of everything a checkpoint writes, for naming a refused value."""
    for node_id, state in checkpoint.node_states.items():
        yield f"node {node_id!r}", node_id
        for field in ("output", "error", "meta", "branch"):
            yield f"node {node_id!r} {field}", getattr(state, field)
    for item in checkpoint.events:
        yield f"event {item.seq}", [item.node_id, item.data]
    for key, value in checkpoint.run_fields.items():
        yield f"run field {key}", value if key != "definition" else str(value)


def _run_values(run: Run) -> Iterable[tuple[str, Any]]:
    yield "variables", run.variables
    yield "idempotency key", run.idempotency_key
    yield "definition", run.definition.dump()
    yield from _checkpoint_values(
        Checkpoint(node_states=run.node_states, events=run.events, run_fields={})
    )


def _nul_at(values: Iterable[tuple[str, Any]]) -> str | None:
    """Where the first NUL character among `values` is (e.g. `node 'a' output.text`)."""
    for where, value in values:
        path = find_nul(value, "")
        if path is not None:
            return f"{where}{path}"
    return None


def _unstorable_message(execution_id: str, error: Exception, where: str | None) -> str:
    if where is None:
        return f"run {execution_id}: PostgreSQL cannot store a value ({error}); nothing was written"
    return (
        f"run {execution_id}: {where} holds a NUL character (U+0000), which PostgreSQL "
        f"cannot store; nothing was written"
    )


def _workflow(row: RowMapping) -> Workflow:
    return Workflow(
        id=row["id"],
        version=row["version"],
        definition=parse_definition(row["definition"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class SqlStore:
    """The `Store` on SQLite (`sqlite:///path`) or PostgreSQL (`postgresql://...`)."""

    def __init__(
        self,
        url: str,
        *,
        busy_timeout_ms: int = 5000,
        pool_size: int = 10,
        max_overflow: int = 20,
    ) -> None:
        """Prepare a store for `url`; nothing connects before `start()`.

        A SQLite URL may set `?synchronous=off|normal|full|extra` (default normal:
        a commit is durable once it is in the write-ahead log). `off` leaves syncing
        to the operating system: a process that dies loses nothing, a machine that
        loses power may; only for scratch files (`ductwork run`'s temporary store).

        busy_timeout_ms: how long SQLite waits for another process's write lock.
        pool_size, max_overflow: the PostgreSQL connection pool.
        """
        self._backend = _backend_for(url, busy_timeout_ms, pool_size, max_overflow)
        self._started = False
        dialect_insert = (
            sqlite.insert if self._backend.dialect_name == "sqlite" else postgresql.insert
        )
        upsert = dialect_insert(node_states)
        self._upsert_states = hot(upsert).on_conflict_do_update(
            index_elements=[node_states.c.execution_id, node_states.c.node_id],
            set_={name: upsert.excluded[name] for name in _NODE_STATE_COLUMNS},
        )
        # A trigger claim that yields to a holder instead of failing the transaction.
        self._claim_trigger = dialect_insert(workflow_triggers).on_conflict_do_nothing()
        # Checkpoint statements, compiled once `start()` knows the dialect; one run
        # UPDATE per combination of run fields a checkpoint sets.
        self._prepared_states: _Prepared | None = None
        self._prepared_events: _Prepared | None = None
        self._run_updates: dict[tuple[tuple[str, ...], bool, bool], _Prepared] = {}
        self._one_statement: sql_postgres.OneStatementCheckpoint | None = None

        self._security = SqlSecurityStore(self._backend)

    @property
    def security(self) -> SqlSecurityStore:
        """Users, API keys, sessions, credentials and the audit log, in the same database."""
        return self._security

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self._backend.dialect_name

    async def start(self) -> None:
        """Connect and create or migrate the schema (idempotent)."""
        if self._started:
            return
        await self._backend.start()
        async with self._backend.schema_transaction() as session:
            await session.run_sync(migrate)
        dialect = self._backend.dialect
        self._prepared_states = _Prepared(self._upsert_states, dialect)
        self._prepared_events = _Prepared(_INSERT_EVENTS, dialect)
        self._run_updates.clear()
        self._one_statement = (
            sql_postgres.OneStatementCheckpoint(dialect)
            if isinstance(self._backend, _PostgresBackend)
            else None
        )
        self._started = True

    async def close(self) -> None:
        """Release connections."""
        await self._backend.close()
        self._started = False

    # Workflows --------------------------------------------------------------------

    async def create_workflow(self, workflow: Workflow) -> Workflow:
        """Insert a new workflow (version 1) with its trigger rows, in one transaction.

        Raises TriggerConflict (nothing written) when another workflow serves one
        of its webhook paths.
        """
        definition = workflow.definition.dump()
        try:
            async with self._backend.transaction(write=True) as session:
                await session.execute(
                    insert(workflows),
                    {
                        "id": workflow.id,
                        "name": workflow.definition.name,
                        "version": workflow.version,
                        "definition": definition,
                        "status": workflow.definition.status,
                        "created_at": workflow.created_at,
                        "updated_at": workflow.updated_at,
                    },
                )
                await session.execute(
                    insert(workflow_versions),
                    {
                        "workflow_id": workflow.id,
                        "version": workflow.version,
                        "definition": definition,
                        "created_at": workflow.updated_at,
                    },
                )
                await self._claim_triggers(session, workflow.id, workflow.definition)
        except IntegrityError as exc:
            raise StoreError(f"workflow {workflow.id} exists already") from exc
        return workflow

    async def _claim_triggers(
        self, session: _Session, workflow_id: str, definition: WorkflowDefinition
    ) -> None:
        """Write a workflow's trigger rows (it holds none in this transaction yet).

        Raises TriggerConflict, which rolls the caller's transaction back, when
        another workflow holds one. Rows go in sorted order, so two saves
        claiming the same paths wait for each other instead of deadlocking.
        """
        for type_, key in sorted(trigger_index(workflow_id, definition)):
            params = {"workflow_id": workflow_id, "type": type_, "key": key}
            for _ in range(_CLAIM_ATTEMPTS):
                # On PostgreSQL this waits for a concurrent claim of the same row to
                # commit or roll back, so the holder read next is committed.
                if (await session.execute(self._claim_trigger, params)).rowcount:
                    break
                holder = (await session.execute(_TRIGGER_HOLDER, params)).scalar()
                if holder is not None:
                    raise TriggerConflict(key, holder)
            else:
                raise StoreError(f"{type_} trigger {key!r} keeps changing hands; try again")

    async def get_workflow(self, workflow_id: str) -> Workflow | None:
        """The current version of a workflow, or None."""
        async with self._backend.transaction(write=False, single=True) as session:
            result = await session.execute(_SELECT_WORKFLOW, {"id": workflow_id})
            row = result.mappings().first()
        return None if row is None else _workflow(row)

    async def get_workflow_version(self, workflow_id: str, version: int) -> Workflow | None:
        """One stored version of a workflow (updated_at: when it was saved), or None."""
        statement = (
            select(
                workflows.c.id,
                workflow_versions.c.version,
                workflow_versions.c.definition,
                workflows.c.created_at,
                workflow_versions.c.created_at.label("updated_at"),
            )
            .join(workflow_versions, workflow_versions.c.workflow_id == workflows.c.id)
            .where(workflows.c.id == bindparam("id"), workflow_versions.c.version == bindparam("v"))
        )
        async with self._backend.transaction(write=False) as session:
            result = await session.execute(statement, {"id": workflow_id, "v": version})
            row = result.mappings().first()
        return None if row is None else _workflow(row)

    async def list_workflows(
        self, limit: int = 100, offset: int = 0, *, q: str | None = None
    ) -> list[Workflow]:
        """Workflows, newest first; with `q`, those whose name contains it (any case)."""
        statement = (
            select(workflows)
            .order_by(workflows.c.created_at.desc(), workflows.c.id.desc())
            .limit(bindparam("limit"))
            .offset(bindparam("offset"))
        )
        if q:
            # A bound parameter with `%`, `_` and the escape character `/` escaped
            # (ESCAPE '/'): the user's text is matched literally. PostgreSQL renders
            # ILIKE, SQLite lower(name) LIKE lower(?) (Unicode-aware, see _on_connect).
            statement = statement.where(workflows.c.name.icontains(q, autoescape=True))
        async with self._backend.transaction(write=False) as session:
            result = await session.execute(statement, {"limit": limit, "offset": offset})
            rows = result.mappings().all()
        return [_workflow(row) for row in rows]

    async def update_workflow(
        self, workflow_id: str, definition: WorkflowDefinition, updated_at: datetime
    ) -> Workflow | None:
        """Replace the definition and bump the version; None when the id is unknown.

        Its trigger rows are replaced in the same transaction; TriggerConflict
        (nothing written) when another workflow serves one of its webhook paths.
        """
        dumped = definition.dump()
        statement = (
            update(workflows)
            .where(workflows.c.id == workflow_id)
            .values(
                name=definition.name,
                status=definition.status,
                definition=dumped,
                version=workflows.c.version + 1,
                updated_at=updated_at,
            )
            .returning(*workflows.c)
        )
        async with self._backend.transaction(write=True) as session:
            row = (await session.execute(statement, {})).mappings().first()
            if row is None:
                return None
            await session.execute(
                insert(workflow_versions),
                {
                    "workflow_id": workflow_id,
                    "version": row["version"],
                    "definition": dumped,
                    "created_at": updated_at,
                },
            )
            # The workflow's row lock (PostgreSQL) serialises saves of it, so its old
            # rows can go before the new ones are claimed.
            await session.execute(_DELETE_TRIGGERS, {"wid": workflow_id})
            await self._claim_triggers(session, workflow_id, definition)
        return _workflow(row)

    async def delete_workflow(self, workflow_id: str) -> bool:
        """Delete a workflow, its versions and trigger rows; its runs stay readable.

        False when unknown.
        """
        async with self._backend.transaction(write=True) as session:
            await session.execute(_DELETE_TRIGGERS, {"wid": workflow_id})
            await session.execute(
                delete(workflow_versions).where(workflow_versions.c.workflow_id == workflow_id), {}
            )
            result = await session.execute(
                delete(workflows).where(workflows.c.id == workflow_id), {}
            )
        return bool(result.rowcount)

    async def find_hook(self, path: str) -> Workflow | None:
        """The workflow serving webhook `path` (normalized, see `normalize_hook_path`)."""
        async with self._backend.transaction(write=False, single=True) as session:
            result = await session.execute(_SELECT_HOOK, {"path": normalize_hook_path(path)})
            row = result.mappings().first()
        return None if row is None else _workflow(row)

    async def list_scheduled_workflows(self) -> list[Workflow]:
        """Every workflow that declares a schedule trigger (paused ones included), oldest first."""
        async with self._backend.transaction(write=False, single=True) as session:
            rows = (await session.execute(_SELECT_SCHEDULED, {})).mappings().all()
        return [_workflow(row) for row in rows]

    # Runs -------------------------------------------------------------------------

    async def create_run(self, run: Run, *, audit: AuditEntry | None = None) -> Run:
        """Insert a run (and `audit`, its audit entry, in the same transaction); raises
        DuplicateRun when its idempotency key is taken (nothing written)."""
        row = run.model_dump(exclude={"node_states", "events"})
        row["status"] = run.status.value
        row["definition"] = run.definition.dump()
        row["last_seq"] = max([run.last_seq, *(e.seq for e in run.events)])
        audit_row = None if audit is None else audit.model_dump()
        children = bool(run.node_states or run.events)
        # One statement commits by itself on PostgreSQL (no BEGIN/COMMIT round trips):
        # the run alone, or the run with its audit entry as one statement.
        postgres = self._backend.dialect_name == "postgresql"
        single = not children and (audit_row is None or postgres)
        try:
            async with self._backend.transaction(write=True, single=single) as session:
                if audit_row is not None and postgres and not children:
                    prefix = sql_postgres.AUDIT_PREFIX
                    both = {**row, **{prefix + key: v for key, v in audit_row.items()}}
                    await session.execute(sql_postgres.INSERT_RUN_WITH_AUDIT, both)
                else:
                    await session.execute(_INSERT_RUN, row)
                    if audit_row is not None:
                        await session.execute(INSERT_AUDIT, audit_row)
                if run.node_states:
                    await session.execute(
                        self._upsert_states,
                        [_node_row(run.execution_id, k, s) for k, s in run.node_states.items()],
                    )
                if run.events:
                    await session.execute(
                        _INSERT_EVENTS, [_event_row(run.execution_id, e) for e in run.events]
                    )
        except IntegrityError as exc:
            if run.idempotency_key is not None:
                existing = await self._run_by_key(run.workflow_id, run.idempotency_key)
                if existing is not None:
                    raise DuplicateRun(existing) from exc
            raise StoreError(f"run {run.execution_id} exists already") from exc
        except DBAPIError as exc:
            if not self._backend.is_unstorable(exc):
                raise
            message = _unstorable_message(run.execution_id, exc, _nul_at(_run_values(run)))
            raise UnstorableValue(message) from exc
        return run.model_copy(update={"last_seq": row["last_seq"]})

    async def _run_by_key(self, workflow_id: str, key: str) -> Run | None:
        async with self._backend.transaction(write=False) as session:
            result = await session.execute(_SELECT_RUN_BY_KEY, {"wid": workflow_id, "key": key})
            row = result.mappings().first()
            if row is None:
                return None
            return (await self._assemble(session, [row], with_events=True))[0]

    async def get_run(
        self, execution_id: str, *, with_events: bool = True, with_node_states: bool = True
    ) -> Run | None:
        """A run with all node states and its events, in order (each unless told not to)."""
        if self._backend.dialect_name == "postgresql":
            # One statement, one snapshot: 1 round trip instead of 5 (`sql_postgres`).
            statement = sql_postgres.select_run_with_children(with_events, with_node_states)
            async with self._backend.transaction(write=False, single=True) as session:
                result = await session.execute(statement, {"eid": execution_id})
                row = result.mappings().first()
            if row is None:
                return None
            run, states, events = sql_postgres.split_run_row(row)
            return self._run(run, states, events)
        async with self._backend.transaction(write=False) as session:
            return await self._load_run(
                session, execution_id, with_events=with_events, with_node_states=with_node_states
            )

    async def _load_run(
        self,
        session: _Session,
        execution_id: str,
        *,
        with_events: bool,
        with_node_states: bool = True,
    ) -> Run | None:
        row = (await session.execute(_SELECT_RUN, {"eid": execution_id})).mappings().first()
        if row is None:
            return None
        states: Sequence[RowMapping] = ()
        if with_node_states:
            result = await session.execute(_SELECT_STATES, {"eid": execution_id})
            states = result.mappings().all()
        events: Sequence[RowMapping] = ()
        if with_events:
            result = await session.execute(_SELECT_ALL_EVENTS, {"eid": execution_id})
            events = result.mappings().all()
        return self._run(row, states, events)

    @staticmethod
    def _run(
        row: Mapping[Any, Any],
        states: Iterable[Mapping[Any, Any]],
        events: Iterable[Mapping[Any, Any]],
    ) -> Run:
        data = dict(row)
        if isinstance(data.get("definition"), Mapping):
            data["definition"] = parse_definition(data["definition"])
        data["node_states"] = {s["node_id"]: _strip(s, "execution_id", "node_id") for s in states}
        data["events"] = [_strip(e, "execution_id") for e in events]
        return Run.model_validate(data)

    async def _assemble(
        self, session: _Session, rows: Sequence[RowMapping], *, with_events: bool
    ) -> list[Run]:
        """Runs for a page of run rows: node states and events in one query each."""
        if not rows:
            return []
        ids = [row["execution_id"] for row in rows]
        states: dict[str, list[RowMapping]] = {eid: [] for eid in ids}
        for state in (await session.execute(_SELECT_STATES_IN, {"eids": ids})).mappings():
            states[state["execution_id"]].append(state)
        events: dict[str, list[RowMapping]] = {eid: [] for eid in ids}
        if with_events:
            for item in (await session.execute(_SELECT_EVENTS_IN, {"eids": ids})).mappings():
                events[item["execution_id"]].append(item)
        return [
            self._run(row, states[row["execution_id"]], events[row["execution_id"]]) for row in rows
        ]

    async def find_runs(
        self,
        query: RunQuery = RunQuery(),
        *,
        limit: int = 100,
        offset: int = 0,
        with_events: bool = False,
        after: RunCursor | None = None,
    ) -> list[Run]:
        """Runs matching `query`, newest first, with node states (and events when asked);
        with `after`, those after that cursor (keyset paging)."""
        statement = find_runs_statement(query, keyset=after is not None)
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if after is not None:
            params["after_at"] = after.created_at
            params["after_id"] = after.execution_id
        async with self._backend.transaction(write=False) as session:
            result = await session.execute(statement, params)
            return await self._assemble(session, result.mappings().all(), with_events=with_events)

    async def latest_runs(self, workflow_ids: Sequence[str]) -> dict[str, RunSummary]:
        """The newest run of each stored workflow of `workflow_ids`, in one query.

        Driven from the workflows: one index probe of (workflow_id, created_at)
        per workflow, however many runs each has (a window over the runs would
        read them all).
        """
        if not workflow_ids:
            return {}
        async with self._backend.transaction(write=False, single=True) as session:
            result = await session.execute(_SELECT_LATEST_RUNS, {"wids": list(workflow_ids)})
            rows = result.mappings().all()
        return {row["workflow_id"]: RunSummary.model_validate(row) for row in rows}

    def _run_update(self, keys: tuple[str, ...], with_seq: bool, fenced: bool) -> _Prepared:
        prepared = self._run_updates.get((keys, with_seq, fenced))
        if prepared is None:
            values: dict[str, Any] = {
                key: bindparam(f"p_{key}", type_=_R[key].type) for key in keys
            }
            if with_seq:
                seq = bindparam("p_seq", type_=Integer)
                values["last_seq"] = case((_R.last_seq < seq, seq), else_=_R.last_seq)
            if not values:
                # A fenced checkpoint of node states alone still has to check the lease.
                values["lease_owner"] = _R.lease_owner
            statement = update(workflow_runs).where(_R.execution_id == bindparam("p_eid"))
            if fenced:
                statement = statement.where(_R.lease_owner == bindparam("p_owner"))
            prepared = _Prepared(statement.values(values), self._backend.dialect)
            self._run_updates[(keys, with_seq, fenced)] = prepared
        return prepared

    async def checkpoint(
        self, execution_id: str, checkpoint: Checkpoint, *, owner: str | None = None
    ) -> None:
        """Apply node states (upsert per node), append events, set run fields: one commit.

        Raises StoreError when the run is unknown or an event's seq is taken,
        LeaseLost when `owner` is given and does not hold the lease, and
        ValueError for a run field a checkpoint may not set.
        """
        await self.checkpoint_many([(execution_id, checkpoint)], owner=owner)

    async def checkpoint_many(
        self, items: Sequence[tuple[str, Checkpoint]], *, owner: str | None = None
    ) -> None:
        """Several runs' checkpoints in ONE transaction (group commit); all or nothing.

        Never raises PartialCheckpoint: whatever it raises (LeaseLost for a run
        another worker took over, UnstorableValue, StoreError), nothing of the
        batch was written, except that a connection lost during COMMIT leaves
        the outcome unknown, as on any database.
        """
        prepared_states, prepared_events = self._prepared_states, self._prepared_events
        if prepared_states is None or prepared_events is None:
            raise StoreError("the store is not started")
        node_rows: list[dict[str, Any]] = []
        event_rows: list[dict[str, Any]] = []
        run_updates: list[tuple[str, _Prepared, dict[str, Any]]] = []
        for execution_id, checkpoint in items:
            fields = run_field_values(checkpoint.run_fields) if checkpoint.run_fields else {}
            fragments = _encoded_outputs(checkpoint) if checkpoint.output_json else None
            node_rows.extend(
                _node_row(execution_id, k, s, fragments) for k, s in checkpoint.node_states.items()
            )
            event_rows.extend(_event_row(execution_id, e, fragments) for e in checkpoint.events)
            if fields or checkpoint.events or (owner is not None and checkpoint):
                params = {f"p_{key}": value for key, value in fields.items()}
                params["p_eid"] = execution_id
                if checkpoint.events:
                    params["p_seq"] = max(e.seq for e in checkpoint.events)
                if owner is not None:
                    params["p_owner"] = owner
                run_update = self._run_update(
                    tuple(fields), bool(checkpoint.events), owner is not None
                )
                run_updates.append((execution_id, run_update, params))
        if not (node_rows or event_rows or run_updates):
            return
        try:
            one_statement = self._one_statement
            if one_statement is not None and len(run_updates) == 1 and len(items) == 1:
                # PostgreSQL, one run: one statement (store/sql_postgres.py).
                execution_id, run_update, params = run_updates[0]
                backend = self._backend
                assert isinstance(backend, _PostgresBackend)
                async with backend.raw_connection() as db:
                    written = await one_statement.run(
                        db, run_update.sql, run_update.args(params), node_rows, event_rows
                    )
                if not written:
                    raise _unmatched(execution_id, owner)
                return
            if (
                one_statement is not None
                and run_updates
                and len({execution_id for execution_id, _ in items}) == len(items)
            ):
                # PostgreSQL, several runs: BEGIN, one statement, COMMIT (sql_postgres.py).
                updates = [(update.sql, update.args(params)) for _, update, params in run_updates]
                async with self._backend.raw_transaction() as session:
                    assert isinstance(session, _AsyncpgRawSession)
                    matched = await one_statement.run_many(
                        session.driver, updates, node_rows, event_rows
                    )
                    for execution_id, _, _ in run_updates:
                        if execution_id not in matched:  # raised: the batch rolls back
                            raise _unmatched(execution_id, owner)
                return
            async with self._backend.raw_transaction() as session:
                if node_rows:
                    await session.executemany(prepared_states, node_rows)
                if event_rows:
                    await session.executemany(prepared_events, event_rows)
                # Run rows last: on PostgreSQL their row locks are then held only
                # for the rest of this commit, not while the children are written.
                for execution_id, run_update, params in run_updates:
                    if not await session.execute(run_update, params):
                        raise _unmatched(execution_id, owner)
        except self._backend.unstorable_errors as exc:
            # The whole transaction rolled back. Name the first run (and place)
            # that holds the value; when the batch is retried run by run, the
            # others go through.
            for execution_id, checkpoint in items:
                where = _nul_at(_checkpoint_values(checkpoint))
                if where is not None:
                    raise UnstorableValue(_unstorable_message(execution_id, exc, where)) from exc
            raise UnstorableValue(_unstorable_message(_run_names(items), exc, None)) from exc
        except self._backend.refused_errors as exc:
            raise StoreError(f"checkpoint of run {_run_names(items)} refused: {exc}") from exc

    async def latest_idempotency_key(self, workflow_id: str, prefix: str) -> str | None:
        """The greatest idempotency key starting with `prefix` among the workflow's runs.

        One probe of the unique (workflow_id, idempotency_key) index: the range
        `prefix <= key < prefix_end(prefix)`, so `%`, `_` and every other
        character of the prefix are taken literally.
        """
        high = prefix_end(prefix)
        statement = _LATEST_KEY if high is None else _LATEST_KEY_BELOW
        params = {"wid": workflow_id, "low": prefix, "high": high}
        async with self._backend.transaction(write=False, single=True) as session:
            key: str | None = (await session.execute(statement, params)).scalar()
        return key

    async def resume_node(
        self, execution_id: str, node_id: str, payload: Any, now: datetime
    ) -> ResumeOutcome:
        """Hand a parked `wait` node its resume payload, once (compare-and-set).

        One transaction: the node's row is read under a row lock (PostgreSQL; on
        SQLite the write transaction holds the database), checked by
        `resume_outcome`, and only then written, with the run's `wake_at`.
        """
        params = {"eid": execution_id, "nid": node_id}
        try:
            async with self._backend.transaction(write=True) as session:
                row = (await session.execute(_SELECT_NODE_TO_RESUME, params)).mappings().first()
                if row is None:
                    # A node of the run that has not started is there, just not waiting.
                    result = await session.execute(_SELECT_RUN_DEFINITION, params)
                    stored = result.scalar()
                    return "not_waiting" if declares_node(stored, node_id) else "not_found"
                meta = row["meta"] if isinstance(row["meta"], dict) else {}
                outcome = resume_outcome(row["status"], meta, row["wake_at"], now)
                if outcome != "resumed":
                    return outcome
                meta = {**meta, "resumed": True, "resume_payload": payload}
                await session.execute(_SET_RESUMED, {**params, "p_meta": meta})
                await session.execute(_WAKE_RUN, {"eid": execution_id, "p_now": aware(now)})
        except DBAPIError as exc:
            if not self._backend.is_unstorable(exc):
                raise
            where = _nul_at([("resume payload", payload)]) or "the resume payload"
            raise UnstorableValue(
                f"run {execution_id}: {where} holds a value PostgreSQL cannot store "
                f"(a NUL character); nothing was written"
            ) from exc
        return "resumed"

    async def list_events(
        self, execution_id: str, after_seq: int = 0, *, limit: int | None = None
    ) -> list[Event]:
        """Events of a run with seq > after_seq, in order; the first `limit` when given."""
        params: dict[str, Any] = {"eid": execution_id, "after": after_seq}
        statement = _SELECT_EVENTS
        if limit is not None:
            statement, params["limit"] = _SELECT_EVENTS_PAGE, limit
        async with self._backend.transaction(write=False, single=True) as session:
            result = await session.execute(statement, params)
            rows = result.mappings().all()
        return [Event.model_validate(_strip(row, "execution_id")) for row in rows]

    # Run control across processes ---------------------------------------------------

    async def request_cancel(self, execution_id: str) -> Run | None:
        """Set the cancel flag; a queued run nobody holds becomes cancelled at once.

        Cancelling a queued run also appends its `run_finished` event, in the same
        commit. A finished run is left as it is.
        """
        now = utcnow()
        cancel_queued = (
            update(workflow_runs)
            .where(
                _R.execution_id == execution_id,
                _R.status == RunStatus.QUEUED.value,
                _lease_free(now),
            )
            .values(
                status=RunStatus.CANCELLED.value,
                cancel_requested=True,
                end_time=now,
                lease_owner=None,
                lease_expires_at=None,
                last_seq=_R.last_seq + 1,
            )
            .returning(_R.last_seq)
        )
        flag = (
            update(workflow_runs)
            .where(_R.execution_id == execution_id, _R.status.not_in(FINISHED_RUN_STATUSES))
            .values(
                cancel_requested=True,
                # A parked run is due now: the sweep wakes it to be cancelled even when
                # the queue message `cancel` sends is lost (queue/redis.py reads NOACK).
                wake_at=case(
                    (_R.status == RunStatus.WAITING.value, now),
                    else_=_R.wake_at,
                ),
            )
        )
        async with self._backend.transaction(write=True) as session:
            seq = (await session.execute(cancel_queued, {})).scalar()
            if seq is not None:
                finished = Event(
                    seq=seq, type="run_finished", timestamp=now, data={"status": "cancelled"}
                )
                await session.execute(_INSERT_EVENTS, _event_row(execution_id, finished))
            else:
                await session.execute(flag, {})
            return await self._load_run(session, execution_id, with_events=True)

    async def acquire_lease(
        self,
        execution_id: str,
        owner: str,
        expires_at: datetime,
        now: datetime,
        *,
        known: Run | None = None,
    ) -> Run | None:
        """Take the run's lease when free, expired or already ours (compare-and-set).

        Returns the run (node states, not events: the worker needs only
        `last_seq`) on success, None when another owner holds a live lease, the
        run is finished or unknown. With `known` (the run as this process created
        it) and a run that has not moved on since, the UPDATE is the only statement.
        """
        params = {"eid": execution_id, "owner": owner, "expires": expires_at, "now": now}
        # No transaction around the two statements on PostgreSQL (2 round trips, not 5):
        # the UPDATE returns the run row as it set it, and while the lease is ours
        # nobody else writes the run's node states.
        try:
            async with self._backend.transaction(write=True, single=True) as session:
                if known is not None:
                    result = await session.execute(_ACQUIRE_LEASE_RETURNING_SMALL, params)
                    row = result.mappings().first()
                    if row is None:
                        return None
                    adopted = adopt_known(known, row)
                    if adopted is not None:
                        return adopted
                    # It moved on since (another worker drove it): read it whole.
                    return await self._load_run(session, execution_id, with_events=False)
                result = await session.execute(_ACQUIRE_LEASE_RETURNING, params)
                row = result.mappings().first()
                if row is None:
                    return None
                states = (await session.execute(_SELECT_STATES, {"eid": execution_id})).mappings()
                return self._run(row, states.all(), ())
        except Exception:
            # On PostgreSQL the UPDATE may have committed before the read failed: give the
            # lease back so the run need not wait for it to expire (best effort).
            with contextlib.suppress(Exception):
                await self.release_lease(execution_id, owner)
            raise

    async def renew_lease(self, execution_id: str, owner: str, expires_at: datetime) -> bool:
        """Extend our lease; False when we lost it."""
        params = {"eid": execution_id, "owner": owner, "expires": expires_at}
        async with self._backend.transaction(write=True, single=True) as session:
            result = await session.execute(_RENEW_LEASE, params)
        return bool(result.rowcount)

    async def release_lease(self, execution_id: str, owner: str) -> None:
        """Give the lease up (no-op when not ours)."""
        async with self._backend.transaction(write=True, single=True) as session:
            await session.execute(_RELEASE_LEASE, {"eid": execution_id, "owner": owner})

    async def is_cancel_requested(self, execution_id: str) -> bool:
        """Whether someone asked this run to stop (False for an unknown run)."""
        async with self._backend.transaction(write=False, single=True) as session:
            value = (await session.execute(_SELECT_CANCEL, {"eid": execution_id})).scalar()
        return bool(value)

    async def find_runs_to_resume(self, now: datetime, limit: int = 100) -> list[str]:
        """Ids of runs that need a worker, oldest first.

        - running or queued runs whose lease is set and has expired (the worker died);
        - running runs nobody holds (a worker let go without finishing them);
        - waiting runs whose `wake_at` has come and whose lease is not live;
        - queued runs nobody holds that were created more than `QUEUED_GRACE`
          (2 s) before `now` (the queue lost them; fresher ones are on their way),
          except runs refused a concurrency slot (`queued_reason` set) and not
          asked to cancel, which `find_waiting_heads` offers, the head of each
          workflow's line only.
        """
        leased = and_(_R.lease_owner.is_not(None), _lease_free(now))
        unleased = _R.lease_owner.is_(None)
        statement = (
            select(_R.execution_id)
            .where(
                or_(
                    and_(_R.status.in_([RunStatus.RUNNING.value, RunStatus.QUEUED.value]), leased),
                    and_(_R.status == RunStatus.RUNNING.value, unleased),
                    and_(_R.status == RunStatus.WAITING.value, _R.wake_at <= now, _lease_free(now)),
                    and_(
                        _R.status == RunStatus.QUEUED.value,
                        unleased,
                        _R.created_at < now - QUEUED_GRACE,
                        # Runs refused a slot: `find_waiting_heads` offers them
                        # (unless asked to cancel: the driver ends those).
                        or_(_R.queued_reason.is_(None), _flag(_R.cancel_requested, True)),
                    ),
                )
            )
            .order_by(_R.created_at, _R.execution_id)
            .limit(limit)
        )
        async with self._backend.transaction(write=False) as session:
            result = await session.execute(statement, {})
            return list(result.scalars())

    # Sub-workflows (issue 11) ---------------------------------------------------------
    # Usage and budgets (issue 11) -----------------------------------------------------
    async def workflow_cost_since(
        self, workflow_id: str, since: datetime, *, exclude_execution_id: str | None = None
    ) -> float:
        """The summed cost of the workflow's runs created at or after `since` (one
        probe of the (workflow_id, created_at) index), leaving one run out."""
        statement = select(func.coalesce(func.sum(_R.cost), 0.0)).where(
            _R.workflow_id == workflow_id, _R.created_at >= since
        )
        if exclude_execution_id is not None:
            statement = statement.where(_R.execution_id != exclude_execution_id)
        async with self._backend.transaction(write=False, single=True) as session:
            value = (await session.execute(statement, {})).scalar()
        return float(value or 0.0)

    async def workflow_usage(self, workflow_id: str, since: datetime) -> list[UsageDay]:
        """The workflow's runs since `since` summed per UTC day (GROUP BY in the database)."""
        day = _utc_day(self._backend.dialect.name).label("day")
        statement = (
            select(
                day,
                func.count().label("runs"),
                func.sum(_R.usage["prompt_tokens"].as_integer()).label("prompt_tokens"),
                func.sum(_R.usage["completion_tokens"].as_integer()).label("completion_tokens"),
                func.sum(_R.cost).label("cost"),
            )
            .where(_R.workflow_id == workflow_id, _R.created_at >= since)
            .group_by(day)
            .order_by(day)
        )
        async with self._backend.transaction(write=False, single=True) as session:
            rows = (await session.execute(statement, {})).mappings().all()
        return [
            UsageDay(
                date=date.fromisoformat(str(row["day"])),
                runs=int(row["runs"]),
                prompt_tokens=int(row["prompt_tokens"] or 0),
                completion_tokens=int(row["completion_tokens"] or 0),
                cost=float(row["cost"] or 0.0),
            )
            for row in rows
        ]

    # Concurrency limits (issue 11) ----------------------------------------------------

    async def admit_run(
        self, execution_id: str, workflow_limit: int | None, global_limit: int | None
    ) -> Admission:
        """Let a queued run take a concurrency slot (see `Store.admit_run`): one transaction.

        SQLite's write transaction holds the whole database, so admissions are
        serialised already. On PostgreSQL the run's row is locked, then an
        advisory transaction lock per workflow (and one global lock when a
        global limit applies, always taken in that order, so two admissions
        cannot deadlock): the counts are then read under READ COMMITTED after
        every earlier admission of the workflow committed.
        """
        postgres = self._backend.dialect_name == "postgresql"
        async with self._backend.transaction(write=True) as session:
            result = await session.execute(
                select(_R.workflow_id, _R.status, _R.admitted, _R.created_at)
                .where(_R.execution_id == execution_id)
                .with_for_update(),
                {},
            )
            row = result.mappings().first()
            if row is None or row["status"] != RunStatus.QUEUED.value:
                return Admission(admitted=False)
            if row["admitted"]:
                return Admission(admitted=True)
            workflow_id: str = row["workflow_id"]
            if postgres:
                locks = [_admission_lock_key(workflow_id)]
                if global_limit is not None:
                    locks.append(_GLOBAL_ADMISSION_LOCK)
                for key in locks:
                    await session.execute(select(func.pg_advisory_xact_lock(key)), {})
            holding = and_(_R.status.in_(_UNFINISHED_RUN_STATUSES), _flag(_R.admitted, True))
            count = select(func.count()).select_from(workflow_runs)
            workflow_active = global_active = 0
            blocked: Literal["workflow", "global", "order"] | None = None
            if workflow_limit is not None:
                workflow_active = int(
                    (
                        await session.execute(
                            count.where(holding, _R.workflow_id == workflow_id), {}
                        )
                    ).scalar_one()
                )
                if workflow_active >= workflow_limit:
                    blocked = "workflow"
            if global_limit is not None and blocked is None:
                global_active = int((await session.execute(count.where(holding), {})).scalar_one())
                if global_active >= global_limit:
                    blocked = "global"
            if blocked is None:
                created_at = row["created_at"]
                older = (
                    select(_R.execution_id)
                    .where(
                        _R.status == RunStatus.QUEUED.value,
                        _R.workflow_id == workflow_id,
                        _flag(_R.admitted, False),
                        _flag(_R.cancel_requested, False),
                        or_(
                            _R.created_at < created_at,
                            and_(_R.created_at == created_at, _R.execution_id < execution_id),
                        ),
                    )
                    .limit(1)
                )
                if (await session.execute(older, {})).first() is not None:
                    blocked = "order"
            if blocked is not None:
                return Admission(
                    admitted=False,
                    blocked_by=blocked,
                    workflow_active=workflow_active,
                    global_active=global_active,
                )
            await session.execute(
                update(workflow_runs)
                .where(_R.execution_id == execution_id)
                .values(admitted=True, queued_reason=None),
                {},
            )
        return Admission(
            admitted=True,
            workflow_active=workflow_active + 1 if workflow_limit is not None else 0,
            global_active=global_active + 1 if global_limit is not None else 0,
        )

    def _waiting(self) -> ColumnElement[bool]:
        """Queued runs that wait for a slot: not admitted, not asked to cancel."""
        return and_(
            _R.status == RunStatus.QUEUED.value,
            _flag(_R.admitted, False),
            _flag(_R.cancel_requested, False),
        )

    async def find_waiting_runs(self, workflow_id: str | None, limit: int) -> list[str]:
        """Queued runs waiting for a slot, oldest first; of one workflow or of all."""
        statement = select(_R.execution_id).where(self._waiting())
        if workflow_id is not None:
            statement = statement.where(_R.workflow_id == workflow_id)
        statement = statement.order_by(_R.created_at, _R.execution_id).limit(limit)
        async with self._backend.transaction(write=False, single=True) as session:
            return list((await session.execute(statement, {})).scalars())

    async def find_waiting_heads(self, now: datetime, limit: int) -> list[str]:
        """Per workflow, its oldest waiting run when it was refused before and is not held."""
        older = workflow_runs.alias("older")
        ahead = (
            select(older.c.execution_id)
            .where(
                older.c.status == RunStatus.QUEUED.value,
                older.c.workflow_id == _R.workflow_id,
                not_(older.c.admitted),
                not_(older.c.cancel_requested),
                or_(
                    older.c.created_at < _R.created_at,
                    and_(
                        older.c.created_at == _R.created_at,
                        older.c.execution_id < _R.execution_id,
                    ),
                ),
            )
            .exists()
        )
        statement = (
            select(_R.execution_id)
            .where(self._waiting(), _R.queued_reason.is_not(None), _lease_free(now), ~ahead)
            .order_by(_R.created_at, _R.execution_id)
            .limit(limit)
        )
        async with self._backend.transaction(write=False, single=True) as session:
            return list((await session.execute(statement, {})).scalars())

    # Retention and versions (issue 11) ------------------------------------------------
    # The statements live in sql_retention.
    async def delete_run(self, execution_id: str) -> bool:
        """Delete a finished run with its node states and events; False: unknown or unfinished."""
        return await sql_retention.delete_run(self._backend, execution_id)

    async def prune_runs(self, plan: PrunePlan, limit: int) -> int:
        """Delete up to `limit` finished runs `plan` lets go, in one transaction; how many."""
        return await sql_retention.prune_runs(self._backend, plan, limit)

    async def count_prunable_runs(self, plan: PrunePlan) -> int:
        """How many runs `prune_runs` would delete now."""
        return await sql_retention.count_prunable_runs(self._backend, plan)

    async def list_workflow_versions(
        self, workflow_id: str, limit: int = 100, offset: int = 0
    ) -> list[WorkflowVersionInfo]:
        """A workflow's saved versions, newest first (empty for an unknown workflow)."""
        return await sql_retention.list_workflow_versions(self._backend, workflow_id, limit, offset)
