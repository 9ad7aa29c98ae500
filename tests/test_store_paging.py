"""Cursor (keyset) paging of runs and events, on every store (issue 12).

`find_runs(after=RunCursor)` and `list_events(limit=)` are what the runs lists'
`?after=` and the events page route read; the SQL plans are checked to read an
index, so a deep page costs what the first one does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ductwork.models import Checkpoint, Event, NodeState, NodeStatus, RunStatus
from ductwork.store.base import RunCursor, RunQuery, Store
from ductwork.store.sql import SqlStore, find_runs_statement
from tests.test_store_contract import T0, _on_connection, new_run, stored_run


async def walk(store: Store, query: RunQuery, limit: int) -> list[list[str]]:
    """Every page of `query`, each read after the previous page's last run."""
    pages: list[list[str]] = []
    after: RunCursor | None = None
    while True:
        page = await store.find_runs(query, limit=limit, after=after)
        if not page:
            return pages
        pages.append([run.execution_id for run in page])
        # Through the token, as a client hands it back.
        after = RunCursor.parse(RunCursor.after(page[-1]).token())


async def test_find_runs_pages_by_cursor_in_the_runs_order(store: Store) -> None:
    async def add(workflow_id: str, second: float, **fields: Any) -> str:
        run = new_run(workflow_id, created_at=T0 + timedelta(seconds=second))
        return (await stored_run(store, run, **fields)).execution_id

    added = [await add("wf-a", 0, status=RunStatus.SUCCESS), await add("wf-b", 1)]
    # Several runs in one instant (one millisecond on MongoDB): the id orders them.
    added += [await add("wf-a", 2) for _ in range(5)]
    added += [await add("wf-b", 3, status=RunStatus.ERROR), await add("wf-a", 4)]
    everything = [r.execution_id for r in await store.find_runs(limit=100)]
    assert sorted(everything) == sorted(added)

    for limit in (1, 2, 3, 100):
        pages = await walk(store, RunQuery(), limit)
        assert [eid for page in pages for eid in page] == everything
        assert all(len(page) == limit for page in pages[:-1])

    of_a = [r.execution_id for r in await store.find_runs(RunQuery(workflow_id="wf-a"))]
    assert len(of_a) == 7
    assert [eid for page in await walk(store, RunQuery(workflow_id="wf-a"), 2) for eid in page] == (
        of_a
    )
    queued = RunQuery(status=RunStatus.QUEUED)
    all_queued = [r.execution_id for r in await store.find_runs(queued)]
    assert [eid for page in await walk(store, queued, 4) for eid in page] == all_queued

    # The cursor of the last run: nothing after it; offset still skips after a cursor.
    last = (await store.find_runs(limit=100))[-1]
    assert await store.find_runs(after=RunCursor.after(last)) == []
    first = (await store.find_runs(limit=1))[0]
    skipped = await store.find_runs(limit=2, offset=1, after=RunCursor.after(first))
    assert [r.execution_id for r in skipped] == everything[2:4]


async def test_new_runs_do_not_shift_the_next_page(store: Store) -> None:
    """An offset page moves when runs are created meanwhile; a cursor page does not."""
    for second in range(4):
        await stored_run(store, new_run(created_at=T0 + timedelta(seconds=second)))
    first = await store.find_runs(limit=2)
    expected = [r.execution_id for r in await store.find_runs(limit=2, offset=2)]
    await stored_run(store, new_run(created_at=T0 + timedelta(seconds=10)))
    after = await store.find_runs(limit=2, after=RunCursor.after(first[-1]))
    assert [r.execution_id for r in after] == expected


async def test_list_events_pages_by_seq(store: Store) -> None:
    run = await stored_run(store, new_run())
    eid = run.execution_id
    events = [
        Event(seq=seq, type="log", node_id="n", timestamp=T0, data={"i": seq})
        for seq in range(1, 8)
    ]
    await store.checkpoint(eid, Checkpoint(events=events[:4]))
    await store.checkpoint(eid, Checkpoint(events=events[4:]))
    assert [e.seq for e in await store.list_events(eid, limit=3)] == [1, 2, 3]
    assert [e.seq for e in await store.list_events(eid, 3, limit=3)] == [4, 5, 6]
    assert [e.seq for e in await store.list_events(eid, 6, limit=3)] == [7]
    assert await store.list_events(eid, 7, limit=3) == []
    assert [e.data for e in await store.list_events(eid, 5, limit=100)] == [{"i": 6}, {"i": 7}]
    assert await store.list_events("missing", limit=3) == []


async def test_a_run_summary_reads_neither_node_states_nor_events(store: Store) -> None:
    run = await stored_run(store, new_run())
    eid = run.execution_id
    state = NodeState(status=NodeStatus.COMPLETED, output={"ok": True}, attempts=1)
    events = [Event(seq=1, type="log", node_id="n", timestamp=T0, data={})]
    await store.checkpoint(
        eid, Checkpoint(node_states={"n": state}, events=events, run_fields={"status": "running"})
    )
    whole = await store.get_run(eid)
    summary = await store.get_run(eid, with_events=False, with_node_states=False)
    assert whole is not None and summary is not None
    assert set(whole.node_states) == {"n"} and len(whole.events) == 1
    assert summary.node_states == {} and summary.events == []
    assert summary.model_dump(exclude={"node_states", "events"}) == whole.model_dump(
        exclude={"node_states", "events"}
    )
    states_only = await store.get_run(eid, with_events=False)
    assert states_only is not None and set(states_only.node_states) == {"n"}


async def test_reads_of_one_stored_definition_share_one_parsed_model(store: Store) -> None:
    first = await stored_run(store, new_run())
    second = await stored_run(store, new_run())
    again = await store.get_run(first.execution_id, with_events=False)
    assert again is not None
    # Validated once: the same model for every read of the same content.
    assert again.definition is first.definition is second.definition
    changed = new_run()
    changed.definition = changed.definition.model_copy(update={"name": "another"})
    other = await stored_run(store, changed)
    assert other.definition is not first.definition
    assert other.definition.name == "another"


def test_run_cursor_tokens_round_trip_and_refuse_anything_else() -> None:
    cursor = RunCursor(datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), "run-1|x")
    token = cursor.token()
    assert "=" not in token and "/" not in token and "+" not in token
    assert RunCursor.parse(token) == cursor
    naive = RunCursor(datetime(2030, 1, 2), "r").token()  # a time without its zone
    for bad in ("", "!!", "bm90aGluZw", "fDIwMzA", naive, RunCursor(cursor.created_at, "").token()):
        with pytest.raises(ValueError, match="cursor"):
            RunCursor.parse(bad)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_sql_cursor_pages_read_the_runs_indexes(
    kind: str, store_url_factory: Callable[[str], str]
) -> None:
    """A deep page is an index range, not a scan and sort of every run."""
    url = store_url_factory(kind)
    store = SqlStore(url)
    await store.start()
    await store.close()

    def plan(connection: Any, query: RunQuery) -> str:
        statement = find_runs_statement(query, keyset=True).params(
            limit=100, offset=0, after_at=T0, after_id="run-x"
        )
        sql = statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
        if connection.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
            return " ".join(str(row[-1]) for row in rows)
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        return " ".join(str(row[0]) for row in connection.exec_driver_sql(f"EXPLAIN {sql}"))

    for query, index in (
        (RunQuery(), "ix_workflow_runs_created_at"),
        (RunQuery(workflow_id="wf"), "ix_workflow_runs_workflow_id"),
        (RunQuery(status=RunStatus.SUCCESS), "ix_workflow_runs_status"),
    ):
        found = await _on_connection(url, lambda c, q=query: plan(c, q))
        assert index in found, found
        # No sort of the whole result: at most the ties of one created_at are sorted.
        assert "USE TEMP B-TREE FOR ORDER BY" not in found, found
