"""PostgreSQL's fewer-statement paths (store/sql_postgres.py): the reads an API makes per run
and the lease statements a worker makes run on the asyncpg driver and give exactly what
SQLAlchemy gives (values and errors); a group commit of several runs is one statement whose
runs' parameters do not mix."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ductwork.models import (
    Event,
    NodeState,
    NodeStatus,
    Run,
    RunStatus,
    Workflow,
    WorkflowDefinition,
)
from ductwork.store import sql, sql_postgres
from ductwork.store.base import Checkpoint, LeaseLost
from ductwork.store.sql import SqlStore

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)


@pytest.fixture
def store_kind() -> str:
    """The shared `store` fixture (tests/support/stores.py) on PostgreSQL alone."""
    return "postgresql"


class ExecuteCounter:
    """Counts statements sent through SQLAlchemy's `AsyncConnection.execute`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = AsyncConnection.execute

        async def counting(connection: AsyncConnection, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await original(connection, *args, **kwargs)

        monkeypatch.setattr(AsyncConnection, "execute", counting)


async def stored_run(store: SqlStore) -> tuple[Workflow, Run]:
    definition = WorkflowDefinition.model_validate(
        {
            "name": "reads",
            "nodes": [{"id": "a", "type": "transformer"}, {"id": "b", "type": "transformer"}],
            "edges": [{"from": "a", "to": "b"}],
        }
    )
    workflow = await store.create_workflow(
        Workflow(id=f"wf-{uuid.uuid4().hex}", definition=definition, created_at=T0, updated_at=T0)
    )
    run = await store.create_run(
        Run(
            execution_id=f"run-{uuid.uuid4().hex}",
            workflow_id=workflow.id,
            workflow_version=1,
            definition=definition,
            variables={"user": "Ada", "nested": {"k": [1, 2.5, None]}},
            created_at=T0,
        )
    )
    # A non-UTC offset on the way in: the reads give UTC back, as for columns.
    later = (T0 + timedelta(seconds=1)).astimezone(timezone(timedelta(hours=5, minutes=30)))
    await store.checkpoint(
        run.execution_id,
        Checkpoint(
            node_states={
                "a": NodeState(
                    status=NodeStatus.COMPLETED,
                    output={"text": "é ☃", "n": 3},
                    latency_ms=1.5,
                    attempts=1,
                    started_at=T0,
                    finished_at=later,
                    meta={"m": True},
                )
            },
            events=[
                Event(seq=1, type="run_started", timestamp=T0),
                Event(seq=2, type="node_completed", node_id="a", timestamp=later, data={"x": 1}),
            ],
            run_fields={"status": RunStatus.RUNNING, "start_time": T0},
        ),
    )
    return workflow, run


async def test_a_run_and_a_workflow_are_read_on_the_driver(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow, run = await stored_run(store)
    counter = ExecuteCounter(monkeypatch)
    read_workflow = await store.get_workflow(workflow.id)
    with_events = await store.get_run(run.execution_id)
    without_events = await store.get_run(run.execution_id, with_events=False)
    events = await store.list_events(run.execution_id, 1)
    assert await store.get_run("no-such-run") is None
    assert await store.get_workflow("no-such-workflow") is None
    assert counter.count == 0
    # The counter does count what goes through SQLAlchemy (the portable read does).
    async with store._backend.transaction(write=False) as session:
        await store._load_run(session, run.execution_id, with_events=True)
    assert counter.count > 0
    assert read_workflow == workflow
    assert with_events is not None and without_events is not None
    assert [event.seq for event in with_events.events] == [1, 2]
    assert without_events.events == []
    assert [event.seq for event in events] == [2]
    state = with_events.node_states["a"]
    assert state.finished_at == T0 + timedelta(seconds=1)
    assert state.finished_at.tzinfo == UTC and state.output == {"text": "é ☃", "n": 3}


async def test_driver_reads_equal_sqlalchemy_reads(store: SqlStore) -> None:
    _workflow, run = await stored_run(store)
    raw = await store.get_run(run.execution_id)
    # The portable read (three statements in one REPEATABLE READ transaction).
    async with store._backend.transaction(write=False) as session:
        portable = await store._load_run(session, run.execution_id, with_events=True)
    assert raw is not None and portable is not None
    assert raw == portable
    assert raw.model_dump(mode="json") == portable.model_dump(mode="json")


async def test_a_lease_is_taken_renewed_and_given_up_on_the_driver(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _workflow, run = await stored_run(store)
    fresh = await store.create_run(
        run.model_copy(update={"execution_id": f"run-{uuid.uuid4().hex}", "node_states": {}})
    )
    counter = ExecuteCounter(monkeypatch)
    far = T0 + timedelta(hours=1)
    leased = await store.acquire_lease(run.execution_id, "worker", far, T0)
    assert await store.acquire_lease(run.execution_id, "other", far, T0) is None
    assert await store.renew_lease(run.execution_id, "worker", far + timedelta(seconds=1))
    assert not await store.renew_lease(run.execution_id, "other", far)
    await store.release_lease(run.execution_id, "worker")
    # The creator's lease: the small columns only, adopted into the run it holds.
    known = await store.acquire_lease(fresh.execution_id, "worker", far, T0, known=fresh)
    assert counter.count == 0
    assert leased is not None and leased.lease_owner == "worker" and leased.node_states
    assert known == fresh.model_copy(update={"lease_owner": "worker", "lease_expires_at": far})
    stored = await store.get_run(run.execution_id, with_events=False)
    assert stored is not None and stored.lease_owner is None and stored.lease_expires_at is None
    hot = store._backend._hot  # type: ignore[attr-defined]
    fell_back = [str(statement) for statement, query in hot.entries() if query is None]
    assert not fell_back, fell_back


async def test_a_lease_taken_on_the_driver_equals_one_taken_through_sqlalchemy(
    store: SqlStore,
) -> None:
    _workflow, run = await stored_run(store)
    far = T0 + timedelta(hours=1)
    params = {"eid": run.execution_id, "owner": "worker", "expires": far, "now": T0}
    leased = await store.acquire_lease(run.execution_id, "worker", far, T0)
    # The same UPDATE ... RETURNING through SQLAlchemy (taken again by its owner: no
    # change), and the portable read of the run.
    async with store._backend.transaction(write=True) as session:
        result = await session.execute(sql._ACQUIRE_LEASE_RETURNING, params)
        portable_row = dict(result.mappings().one())
    async with store._backend.transaction(write=False, single=True) as session:
        raw_row = (await session.execute(sql._ACQUIRE_LEASE_RETURNING, params)).mappings().first()
    async with store._backend.transaction(write=False) as session:
        portable = await store._load_run(session, run.execution_id, with_events=False)
    assert raw_row == portable_row
    assert [type(value) for value in raw_row.values()] == [
        type(value) for value in portable_row.values()
    ]
    assert leased is not None and portable is not None
    assert leased == portable
    assert leased.model_dump(mode="json") == portable.model_dump(mode="json")
    assert leased.lease_expires_at == far and leased.lease_expires_at.tzinfo == UTC


async def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(store: SqlStore) -> None:
    _workflow, run = await stored_run(store)
    async with store._backend.transaction(write=False, single=True) as session:
        row = (await session.execute(sql._SELECT_RUN, {"eid": run.execution_id})).mappings().first()
    assert row is not None
    errors = []
    for single in (True, False):  # on the driver, then through SQLAlchemy
        with pytest.raises(IntegrityError) as raised:
            async with store._backend.transaction(write=True, single=single) as session:
                await session.execute(sql._INSERT_RUN, dict(row))
        errors.append(raised.value)
    on_driver, through_sqlalchemy = errors
    assert type(on_driver) is type(through_sqlalchemy)
    assert type(on_driver.orig) is type(through_sqlalchemy.orig)
    assert on_driver.orig.sqlstate == through_sqlalchemy.orig.sqlstate == "23505"
    # The connection is still good afterwards (nothing was left broken).
    assert await store.get_run(run.execution_id) is not None


async def test_a_group_commit_of_runs_of_every_shape_is_one_statement(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [(await stored_run(store))[1] for _ in range(4)]
    ids = [run.execution_id for run in runs]
    far = T0 + timedelta(hours=1)
    for eid in ids:
        assert await store.acquire_lease(eid, "worker", far, T0)
    statements: list[int] = []
    original = sql_postgres.OneStatementCheckpoint.run_many

    async def counting(self: Any, db: Any, updates: Any, *rows: Any) -> set[str]:
        statements.append(len(updates))
        return await original(self, db, updates, *rows)

    monkeypatch.setattr(sql_postgres.OneStatementCheckpoint, "run_many", counting)
    finished_at = T0 + timedelta(seconds=5)
    batch = [
        # Run fields, states and events; events only; states only (fenced); fields only.
        (
            ids[0],
            Checkpoint(
                node_states={"b": NodeState(status=NodeStatus.COMPLETED, output=[0])},
                events=[Event(seq=3, type="run_finished", timestamp=finished_at)],
                run_fields={"status": RunStatus.SUCCESS, "end_time": finished_at, "result": 0},
            ),
        ),
        (ids[1], Checkpoint(events=[Event(seq=3, type="log", timestamp=T0, data={"i": 1})])),
        (ids[2], Checkpoint(node_states={"b": NodeState(status=NodeStatus.RUNNING)})),
        (ids[3], Checkpoint(run_fields={"cancel_requested": True})),
    ]
    await store.checkpoint_many(batch, owner="worker")
    assert statements == [4]
    got = [await store.get_run(eid) for eid in ids]
    assert all(run is not None for run in got)
    first, second, third, fourth = got  # type: ignore[misc]
    assert first.status is RunStatus.SUCCESS and first.result == 0
    assert first.end_time == finished_at and first.last_seq == 3
    assert first.node_states["b"].output == [0] and first.events[-1].type == "run_finished"
    assert second.status is RunStatus.RUNNING and second.last_seq == 3
    assert second.events[-1].data == {"i": 1} and "b" not in second.node_states
    assert third.node_states["b"].status is NodeStatus.RUNNING and third.last_seq == 2
    assert fourth.cancel_requested and not first.cancel_requested
    assert fourth.last_seq == 2 and "b" not in fourth.node_states
    # One run fenced out: nothing of the batch is written.
    await store.release_lease(ids[3], "worker")
    assert await store.acquire_lease(ids[3], "other", far, T0)
    with pytest.raises(LeaseLost, match=ids[3]):
        await store.checkpoint_many(
            [
                (ids[1], Checkpoint(events=[Event(seq=4, type="log", timestamp=T0)])),
                (ids[3], Checkpoint(events=[Event(seq=3, type="log", timestamp=T0)])),
            ],
            owner="worker",
        )
    assert statements == [4, 2]
    unchanged = await store.get_run(ids[1])
    assert unchanged is not None and unchanged.last_seq == 3
