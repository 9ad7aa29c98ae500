"""The SQLite backend's driver-level path for marked statements (`hot`, `_Query`).

Each marked statement must read and write exactly what SQLAlchemy would: the
same SQL, the same bind and result processing (UTC datetimes, JSON, booleans),
the same column defaults, and the same exceptions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, create_engine, insert, select, update

from ductwork.models import Run, RunStatus, WorkflowDefinition
from ductwork.store import sql as sql_module
from ductwork.store.sql import SqlStore
from ductwork.store.sql_schema import _Query, hot, workflow_runs

DEFINITION = WorkflowDefinition.model_validate(
    {"name": "w", "nodes": [{"id": "a", "type": "start"}], "edges": []}
)


def _run(execution_id: str, **fields: Any) -> Run:
    return Run(
        execution_id=execution_id,
        workflow_id="wf",
        workflow_version=1,
        status=RunStatus.QUEUED,
        definition=DEFINITION,
        variables={"n": 1, "nested": {"é": [1, None]}},
        created_at=datetime(2026, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC),
        **fields,
    )


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    store = SqlStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def test_the_hot_statements_of_a_run_run_on_the_driver(store: SqlStore) -> None:
    await store.create_run(_run("r1"))
    now = datetime.now(UTC)
    leased = await store.acquire_lease("r1", "me", now + timedelta(seconds=30), now)
    assert leased is not None
    await store.release_lease("r1", "me")
    await store.get_run("r1")
    queries = store._backend._queries  # type: ignore[attr-defined]
    # Every statement marked hot that ran compiled to a driver query (none fell back).
    failed = [str(statement) for statement, query in queries.values() if query is None]
    assert queries and not failed, failed


async def test_a_run_read_on_the_driver_equals_one_read_through_sqlalchemy(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await store.create_run(_run("r1", idempotency_key="k", trigger={"type": "x"}))
    fast = await store.get_run("r1")
    # The same read with the driver path switched off.
    monkeypatch.setattr(store._backend, "query", lambda *_: None)  # type: ignore[attr-defined]
    slow = await store.get_run("r1")
    assert fast == slow
    assert fast is not None and fast.created_at == created.created_at
    assert fast.created_at.tzinfo is not None and fast.variables == created.variables


async def test_a_taken_key_raises_what_sqlalchemy_raises(store: SqlStore) -> None:
    await store.create_run(_run("r1"))
    # The insert itself runs on the driver; its sqlite3 error arrives wrapped as
    # SQLAlchemy's, which create_run turns into its own StoreError.
    with pytest.raises(sql_module.StoreError, match="exists already"):
        await store.create_run(_run("r1"))


def test_a_statement_the_driver_path_cannot_reproduce_is_refused() -> None:
    dialect = create_engine("sqlite://").dialect
    # An IN list given when it runs is expanded per call: SQLAlchemy's job.
    dynamic = select(workflow_runs).where(
        workflow_runs.c.execution_id.in_(bindparam("ids", expanding=True))
    )
    with pytest.raises(TypeError):
        _Query(hot(dynamic), dialect, None)
    # A constant IN list is expanded once.
    constant = select(workflow_runs.c.execution_id).where(
        workflow_runs.c.status.in_(["queued", "running"]), workflow_runs.c.depth == 0
    )
    query = _Query(hot(constant), dialect, None)
    assert "IN (?, ?)" in query.sql
    assert query.args({}) == ("queued", "running", 0)


def test_insert_defaults_and_update_binds_are_filled_as_sqlalchemy_fills_them() -> None:
    dialect = create_engine("sqlite://").dialect
    keys = ("execution_id", "workflow_id")
    query = _Query(hot(insert(workflow_runs)), dialect, keys)
    compiled = insert(workflow_runs).compile(dialect=dialect, column_keys=list(keys))
    assert query.sql == compiled.string
    args = query.args({"execution_id": "e", "workflow_id": "w"})
    # cancel_requested, last_seq, redrives ... take their scalar defaults.
    assert args[:3] == ("e", "w", 0) and len(args) == len(compiled.positiontup or ())
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    setter = update(workflow_runs).values(lease_expires_at=bindparam("at"))
    query = _Query(hot(setter), dialect, ("at",))
    assert query.args({"at": stamp}) == ("2026-01-01 00:00:00.000000",)
    with pytest.raises(KeyError):
        query.args({})
