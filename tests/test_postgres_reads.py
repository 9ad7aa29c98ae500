"""PostgreSQL: the reads an API makes per run run on the asyncpg driver (store/sql_postgres.py),
and give exactly what the same statements give through SQLAlchemy."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
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
from ductwork.store.base import Checkpoint
from ductwork.store.sql import SqlStore

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)


@pytest.fixture
async def store(store_url_factory: Callable[[str], str]) -> AsyncIterator[SqlStore]:
    store = SqlStore(store_url_factory("postgresql"))
    await store.start()
    try:
        yield store
    finally:
        await store.close()


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
