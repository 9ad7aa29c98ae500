"""The SQLite backend's driver-level path for marked statements (`hot`, `_Query`).

Each marked statement must read and write exactly what SQLAlchemy would: the
same SQL, the same bind and result processing (UTC datetimes, JSON, booleans),
the same column defaults, and the same exceptions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
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
    failed = [str(statement) for statement, query in queries.entries() if query is None]
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


def test_the_fast_bind_processors_encode_as_sqlalchemy_does(tmp_path: Path) -> None:
    """`sql_schema.bind_processor`'s SQLite shortcuts for UTC datetimes and JSON give
    exactly what SQLAlchemy's own processors give (what older rows hold)."""
    from decimal import Decimal

    from pydantic import TypeAdapter

    from ductwork.store.sql_schema import JsonType, UTCDateTime, bind_processor

    engine = create_engine(f"sqlite:///{tmp_path / 'x.sqlite'}", json_serializer=sql_module.dumps)
    dialect = engine.dialect
    parsed = TypeAdapter(datetime).validate_python("2026-03-04T05:06:07.000009Z")
    datetimes = [
        None,
        datetime(2026, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds: still written
        datetime(2026, 1, 2, 3, 4, 5, 7),  # naive: UTC by convention
        datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=UTC).astimezone(),
        datetime(2026, 6, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))),
        datetime(999, 1, 1, tzinfo=UTC),
        parsed,  # pydantic's own UTC tzinfo, not datetime.UTC
    ]
    ours = bind_processor(UTCDateTime(), dialect)
    theirs = UTCDateTime()._cached_bind_processor(dialect)
    assert ours is not None and theirs is not None
    for value in datetimes:
        assert ours(value) == theirs(value), value
    values: list[Any] = [
        None,
        0,
        1.5,
        "é\u2028",
        [1, None, {"a": True}],
        {"nested": {"x": [datetime(2026, 1, 2, tzinfo=UTC)]}, "d": Decimal("1.10")},
        {1: "integer keys"},
        2**70,
    ]
    ours = bind_processor(JsonType, dialect)
    theirs = JsonType._cached_bind_processor(dialect)
    assert ours is not None and theirs is not None
    for value in values:
        assert ours(value) == theirs(value), value


def test_checkpoint_rows_carry_every_field_of_the_models() -> None:
    """The checkpoint's rows are read off the attributes: a field added to NodeState or
    Event must be added to them (and to the tables) too."""
    from ductwork.models import Event, NodeState, NodeStatus
    from ductwork.store.sql_schema import node_states, run_events

    now = datetime.now(UTC)
    state = NodeState(status=NodeStatus.COMPLETED, output={"v": 1}, started_at=now, meta={"m": 1})
    row = sql_module._node_row("r1", "a", state)
    assert set(row) == {column.name for column in node_states.c}
    assert set(NodeState.model_fields) <= set(row)
    assert row["status"] == "completed" and row["output"] == {"v": 1}
    event = Event(seq=3, type="log", node_id="a", timestamp=now, data={"message": "m"})
    row = sql_module._event_row("r1", event)
    assert set(row) == {column.name for column in run_events.c}
    assert set(Event.model_fields) <= set(row)


async def test_a_checkpoint_stores_the_output_json_the_engine_made_once(store: SqlStore) -> None:
    """`Checkpoint.output_json` is written as it is for the state and its node_completed
    event, and only while the state still holds that very output object."""
    from ductwork.models import Checkpoint, Event, NodeState, NodeStatus

    await store.create_run(_run("r1"))
    now = datetime.now(UTC)
    output = {"text": "x" * 100, "n": [1, 2]}
    # Bytes the store would never make itself: proof it did not encode the output again.
    marked = b'{"text":"marked","n":[1,2]}'
    stale = {"old": True}
    checkpoint = Checkpoint(
        node_states={
            "a": NodeState(status=NodeStatus.COMPLETED, output=output, finished_at=now),
            "b": NodeState(status=NodeStatus.COMPLETED, output={"new": 1}, finished_at=now),
        },
        events=[
            Event(
                seq=1, type="node_completed", node_id="a", timestamp=now, data={"output": output}
            ),
            Event(
                seq=2,
                type="node_completed",
                node_id="b",
                timestamp=now,
                data={"output": {"new": 1}},
            ),
        ],
    )
    checkpoint.output_json["a"] = (output, marked)
    checkpoint.output_json["b"] = (stale, b'{"old":true}')  # not b's output any more
    await store.checkpoint("r1", checkpoint)
    run = await store.get_run("r1")
    assert run is not None
    assert run.node_states["a"].output == {"text": "marked", "n": [1, 2]}
    assert run.events[0].data["output"] == {"text": "marked", "n": [1, 2]}
    assert run.node_states["b"].output == {"new": 1}
    assert run.events[1].data["output"] == {"new": 1}


async def test_a_lone_read_runs_without_begin_or_commit(store: SqlStore) -> None:
    await store.create_run(_run("r1"))
    db = store._backend._db  # type: ignore[attr-defined]
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    try:
        # On the driver (hot), then one through SQLAlchemy (not marked hot).
        assert await store.is_cancel_requested("r1") is False
        hot_read = list(statements)
        assert await store.security.count_users() == 0
    finally:
        db.set_trace_callback(None)
    # SQLite reads one snapshot per statement on its own: no BEGIN/COMMIT around it.
    assert len(hot_read) == 1 and hot_read[0].startswith("SELECT"), hot_read
    # SQLAlchemy begins its own transaction, and it is closed again.
    assert not db.in_transaction
