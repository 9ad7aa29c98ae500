"""What a run read answers, on every SQL read path: SQLite's driver-level reads (`hot`,
`_Query`) and PostgreSQL's one statement (`sql_postgres`, `json_agg`) must each answer
exactly what the portable read (the run row, its node states, its events: three SELECTs
in one transaction, through SQLAlchemy's own result processing) answers, byte for byte
once serialised; and a synchronous execute's reply is that read.

The run has what a reply can hold: node states and events, an error, a loop body's
per-item states (`b[0]`), outputs with unicode, floats of every precision and nested JSON,
bare numbers as outputs (SQLite stores those as REAL: numeric affinity), and it is read
whole, without its events and without its node states. (Issue 12 tried reading a run in
one statement on SQLite too: `json_object` writes a REAL with 15 significant digits there,
so `latency_ms` 0.30000000000000004 came back as 0.3, and a UNION ALL of the three reads
cost more instructions than the three statements: see docs/performance.md.)
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ductwork.models import Checkpoint, Event, NodeState, NodeStatus, Run, RunStatus
from ductwork.store.base import Store
from ductwork.store.sql import SqlStore
from ductwork.store.sql_schema import node_states, run_events, workflow_runs
from tests.support.engine import ProbeNode, definition, embedded
from tests.test_store_contract import T0, new_run

FLAGS = list(itertools.product((True, False), repeat=2))
"""(with_events, with_node_states): every way of reading a run."""

UNICODE = 'héllo wörld ✓ 日本語 🚀 \u2028 "quoted" \\ back'
OUTPUT = {
    "text": UNICODE,
    "floats": [0.1 + 0.2, 1 / 3, 1e300, 2.5e-310, -0.0, 1.0, 123456789.12345679],
    "ints": [0, -1, 2**62],
    "nested": {"list": [1, 2.5, None, True, {"deep": ["x", {"deeper": None}]}], "empty": {}},
    "dotted.key": {"$ref": "#/x"},
}


async def _portable_read(sql: SqlStore, execution_id: str, events: bool, states: bool) -> Any:
    """The run as three SELECTs in one transaction read it, through SQLAlchemy (the
    statements are not marked `hot`), assembled by the store's one `_run`."""
    async with sql._backend.transaction(write=False) as session:
        row = (
            (
                await session.execute(
                    select(workflow_runs).where(workflow_runs.c.execution_id == execution_id), {}
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        state_rows: Any = ()
        if states:
            statement = select(node_states).where(node_states.c.execution_id == execution_id)
            state_rows = (await session.execute(statement, {})).mappings().all()
        event_rows: Any = ()
        if events:
            statement = (
                select(run_events)
                .where(run_events.c.execution_id == execution_id)
                .order_by(run_events.c.seq)
            )
            event_rows = (await session.execute(statement, {})).mappings().all()
    return sql._run(row, state_rows, event_rows)


def _done(output: Any, **fields: Any) -> NodeState:
    return NodeState(
        status=NodeStatus.COMPLETED,
        output=output,
        attempts=1,
        started_at=T0,
        finished_at=T0,
        latency_ms=0.1 + 0.2,
        **fields,
    )


async def _rich_run(db: Store) -> Run:
    """A failed run with a loop body, odd outputs, an error, and events stored out of order."""
    run = await db.create_run(new_run(trigger={"type": "manual", "é": 1.5}))
    eid = run.execution_id
    states = {
        "start": _done({"n": 1}, meta={"note": UNICODE}),
        "loop": _done([OUTPUT, OUTPUT], branch="body"),
        "b[0]": _done(OUTPUT),
        "b[1]": _done(0.1 + 0.2),  # a bare float: a REAL in SQLite's JSON column
        "loop[0]": _done(7),
        "loop[1]": _done("1.0"),
        "c": _done(1e300, cached=True),
        "d": _done(True),
        "bad": NodeState(
            status=NodeStatus.FAILED,
            error=f"boom: {UNICODE}",
            attempts=3,
            latency_ms=1 / 3,
            started_at=T0,
            wake_at=T0,
            meta={"retry": {"delays": [0.5, 1.25]}},
        ),
        "waiting": NodeState(),
    }
    # Events in two commits, the later seqs first: a read must give them in seq order.
    late = [
        Event(seq=4, type="node_failed", node_id="bad", timestamp=T0, data={"error": UNICODE}),
        Event(seq=5, type="run_finished", timestamp=T0, data={"status": "failed"}),
    ]
    early = [
        Event(seq=1, type="run_started", timestamp=T0),
        Event(seq=2, type="node_completed", node_id="b[0]", timestamp=T0, data={"o": OUTPUT}),
        Event(seq=3, type="log", node_id="b[1]", timestamp=T0, data={"x": 0.1 + 0.2}),
    ]
    await db.checkpoint(eid, Checkpoint(node_states=states, events=late))
    await db.checkpoint(
        eid,
        Checkpoint(
            events=early,
            run_fields={
                "status": RunStatus.ERROR,
                "error": f"node bad failed: {UNICODE}",
                "result": {"partial": OUTPUT},
                "start_time": T0,
                "end_time": T0,
                "usage": None,
            },
        ),
    )
    return run


async def test_a_run_reads_back_as_the_portable_read_gives_it(store: Store) -> None:
    if not isinstance(store, SqlStore):
        pytest.skip("the portable SQL read is the reference; MongoDB reads one document")
    run = await _rich_run(store)
    for with_events, with_states in FLAGS:
        got = await store.get_run(
            run.execution_id, with_events=with_events, with_node_states=with_states
        )
        want = await _portable_read(store, run.execution_id, with_events, with_states)
        assert got is not None and want is not None
        assert got.model_dump_json() == want.model_dump_json(), (with_events, with_states)
        assert len(got.events) == (5 if with_events else 0)
        assert len(got.node_states) == (10 if with_states else 0)
    whole = await store.get_run(run.execution_id)
    assert whole is not None
    assert [e.seq for e in whole.events] == [1, 2, 3, 4, 5]
    assert whole.node_states["b[0]"].output["text"] == UNICODE
    assert whole.node_states["b[1]"].output == 0.1 + 0.2  # not SQLite's 15 digits (0.3)
    assert whole.node_states["bad"].latency_ms == 1 / 3
    assert await store.get_run("no-such-run") is None


async def test_a_sync_reply_is_the_run_as_a_read_gives_it(tmp_path: Path) -> None:
    flow = definition(
        [
            {"id": "start", "type": "start"},
            {"id": "loop", "type": "loop", "config": {"items": "{{ input.rows }}"}},
            {"id": "b", "type": "probe", "parent": "loop", "config": {"output": OUTPUT}},
            {"id": "f", "type": "probe", "config": {"output": 0.1 + 0.2}},
            {"id": "bad", "type": "probe", "config": {"fatal": True}},
            {"id": "end", "type": "end"},
        ],
        [("start", "loop"), ("loop", "f"), ("f", "bad"), ("bad", "end")],
    )
    async with embedded(tmp_path, extra_nodes=[ProbeNode()]) as app:
        assert isinstance(app.store, SqlStore)
        workflow = await app.create_workflow(flow)
        reply, _ = await app.execute(workflow.id, {"rows": [1, UNICODE]}, wait=True)
        assert reply.status is RunStatus.ERROR and reply.error
        assert {"b[0]", "b[1]", "loop[0]", "loop[1]", "f", "bad"} <= set(reply.node_states)
        assert reply.node_states["b[1]"].output == OUTPUT
        assert reply.node_states["f"].output == 0.1 + 0.2
        want = await _portable_read(app.store, reply.execution_id, True, True)
        assert reply.model_dump_json() == want.model_dump_json()
        # And without events, as `?events=false` waits for it.
        bare, _ = await app.execute(workflow.id, {"rows": [2.5]}, wait=True, with_events=False)
        want = await _portable_read(app.store, bare.execution_id, False, True)
        assert bare.events == [] and bare.model_dump_json() == want.model_dump_json()
