"""Fewer store round trips per run (issue 12), with every guarantee kept.

- a run and its `run.start` audit entry are one write (`create_run(..., audit=)`);
- a run's terminal commit gives its lease up (no `release_lease` after it);
- a run this process created and drives at once is inserted leased (no lease
  statement: `Executor.lease_new_run`); one it leases later (a concurrency limit, a
  delivery a heartbeat late) is leased without reading back what it just wrote
  (`acquire_lease(..., known=)`), and read whole when it moved on meanwhile.

Store-level tests run on SQLite, PostgreSQL and MongoDB (the contract's `store`).
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ductwork.engine import executor as executor_module
from ductwork.models import (
    Checkpoint,
    NodeState,
    NodeStatus,
    Run,
    RunStatus,
    WorkflowSettings,
    utcnow,
)
from ductwork.security.audit import AuditLog
from ductwork.security.models import AuditQuery
from ductwork.store.base import DuplicateRun, Store, StoreError
from ductwork.store.sql import SqlStore
from ductwork.views import run_view
from tests.support.engine import ProbeNode, definition, embedded
from tests.support.polling import eventually
from tests.test_store_contract import T0, event, new_run


def _entry(db: Store, run: Run) -> Any:
    return AuditLog(db.security).entry(
        "run.start",
        target=f"execution:{run.execution_id}",
        details={"workflow_id": run.workflow_id, "version": run.workflow_version},
    )


async def _entries(db: Store, run: Run) -> list[Any]:
    """The run's audit entries, their times in milliseconds (what BSON dates hold)."""
    entries = await db.security.list_audit(AuditQuery(limit=1000))
    return [_ms(e) for e in entries if e.target == f"execution:{run.execution_id}"]


def _ms(entry: Any) -> Any:
    return entry.model_copy(
        update={"at": entry.at.replace(microsecond=entry.at.microsecond // 1000 * 1000)}
    )


# A run and its audit entry ---------------------------------------------------------------


async def test_create_run_appends_its_audit_entry_and_a_replay_adds_none(store: Store) -> None:
    run = new_run(key="once")
    entry = _entry(store, run)
    await store.create_run(run, audit=entry)
    assert await store.get_run(run.execution_id) is not None
    assert await _entries(store, run) == [_ms(entry)]  # exactly what `record` would write
    # The same key again: the existing run, and no second entry.
    replay = new_run(key="once")
    with pytest.raises(DuplicateRun):
        await store.create_run(replay, audit=_entry(store, replay))
    assert await _entries(store, replay) == []
    assert await _entries(store, run) == [_ms(entry)]


async def test_sql_stores_write_a_run_and_its_audit_entry_as_one(store: Store) -> None:
    if not isinstance(store, SqlStore):
        pytest.skip("MongoDB has no multi-document transaction (two writes, documented)")
    first = new_run()
    entry = _entry(store, first)
    await store.create_run(first, audit=entry)
    # An entry that cannot be stored (its id is taken) takes the run down with it.
    second = new_run()
    with pytest.raises(StoreError):
        await store.create_run(second, audit=entry)
    assert await store.get_run(second.execution_id) is None


async def test_sqlite_starts_a_run_with_its_audit_entry_in_one_commit(tmp_path: Path) -> None:
    sql = SqlStore(f"sqlite:///{tmp_path / 'one.db'}")
    await sql.start()
    try:
        run = new_run()
        statements: list[str] = []
        db: sqlite3.Connection = sql._backend._db  # type: ignore[attr-defined]
        db.set_trace_callback(statements.append)
        try:
            await sql.create_run(run, audit=_entry(sql, run))
        finally:
            db.set_trace_callback(None)
        assert [s for s in statements if s == "COMMIT"] == ["COMMIT"]
        assert len(await _entries(sql, run)) == 1
    finally:
        await sql.close()


async def test_a_runs_start_rides_along_with_its_first_completion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with embedded(tmp_path) as app:
        commits: list[Checkpoint] = []
        commit_many = app.store.checkpoint_many

        async def counting(batches: Any, **kw: Any) -> Any:
            # The SQL store's `checkpoint` is `checkpoint_many` of one: every commit is here.
            commits.extend(checkpoint for _, checkpoint in batches)
            return await commit_many(batches, **kw)

        monkeypatch.setattr(app.store, "checkpoint_many", counting)
        # What is not settled waits RUNNING_COMMIT_DELAY (5 ms) for a commit to ride on;
        # a loaded machine can take longer over a node, so the test waits a minute.
        flush_later = executor_module._Checkpointer.flush_later
        monkeypatch.setattr(
            executor_module._Checkpointer,
            "flush_later",
            lambda self, delay=60.0: flush_later(self, 60.0),
        )
        run = await _run_three(app)
        # No commit holds the run's start alone: it went with the start node's completion.
        first = commits[0]
        assert first.events[0].type == "run_started"
        assert any(state.status is NodeStatus.COMPLETED for state in first.node_states.values())
        # Every node still settled in a commit of its own before the next one began.
        assert len(commits) == len(THREE.nodes)
        assert [e.type for e in run.events][:2] == ["run_started", "node_started"]


# The lease, given up by the terminal commit ------------------------------------------------


async def test_a_checkpoint_can_give_the_lease_up_but_never_take_it(store: Store) -> None:
    run = new_run()
    await store.create_run(run)
    eid = run.execution_id
    assert await store.acquire_lease(eid, "a", T0 + timedelta(seconds=10), T0) is not None
    with pytest.raises(ValueError, match="lease_owner"):
        await store.checkpoint(eid, Checkpoint(run_fields={"lease_owner": "b"}), owner="a")
    finished = Checkpoint(
        events=[event(1)],
        run_fields={"status": RunStatus.SUCCESS, "lease_owner": None, "lease_expires_at": None},
    )
    await store.checkpoint(eid, finished, owner="a")
    got = await store.get_run(eid)
    assert got is not None and got.status is RunStatus.SUCCESS
    assert (got.lease_owner, got.lease_expires_at) == (None, None)
    # Given up, so fenced writes of the former holder are refused from now on.
    assert await store.renew_lease(eid, "a", T0 + timedelta(seconds=20)) is False


class _CountingStore:
    """Counts `release_lease`, records what `acquire_lease` was handed and the runs
    `create_run` inserted."""

    def __init__(self, inner: Store) -> None:
        self.released: list[str] = []
        self.known: list[Run | None] = []
        self.created: list[Run] = []
        self._release = inner.release_lease
        self._acquire = inner.acquire_lease
        self._create = inner.create_run

    async def create_run(self, run: Run, **kw: Any) -> Run:
        self.created.append(run)
        return await self._create(run, **kw)

    async def release_lease(self, execution_id: str, owner: str) -> None:
        self.released.append(execution_id)
        await self._release(execution_id, owner)

    async def acquire_lease(self, *args: Any, known: Run | None = None) -> Run | None:
        self.known.append(known)
        return await self._acquire(*args, known=known)


def _spy(app: Any, monkeypatch: pytest.MonkeyPatch) -> _CountingStore:
    spy = _CountingStore(app.store)
    monkeypatch.setattr(app.store, "release_lease", spy.release_lease)
    monkeypatch.setattr(app.store, "acquire_lease", spy.acquire_lease)
    monkeypatch.setattr(app.store, "create_run", spy.create_run)
    return spy


THREE = definition(
    [
        {"id": "start", "type": "start"},
        {"id": "t", "type": "transformer", "config": {"transform_type": "map"}},
        {"id": "end", "type": "end"},
    ],
    [("start", "t"), ("t", "end")],
)


async def _run_three(app: Any) -> Run:
    """A synchronous run of THREE on `app`, which succeeds."""
    workflow = await app.create_workflow(THREE)
    run, _ = await app.execute(workflow.id, {"n": 1}, wait=True)
    assert run.status is RunStatus.SUCCESS, run.error
    return run


async def test_a_finished_run_gives_its_lease_up_in_its_terminal_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with embedded(tmp_path) as app:
        spy = _spy(app, monkeypatch)
        run = await _run_three(app)
        stored = await app.store.get_run(run.execution_id)
        assert stored is not None
        assert (stored.lease_owner, stored.lease_expires_at) == (None, None)
        assert spy.released == []  # no write after the terminal commit
        # The reply is the run as any reader sees it.
        assert run.model_dump() == stored.model_dump()


async def test_a_parked_run_still_releases_its_lease(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parks = definition(
        [
            {"id": "start", "type": "start"},
            {"id": "d", "type": "delay", "config": {"delay_seconds": 3600}},
            {"id": "end", "type": "end"},
        ],
        [("start", "d"), ("d", "end")],
    )
    async with embedded(tmp_path) as app:
        spy = _spy(app, monkeypatch)
        wf = await app.create_workflow(parks)
        run, _ = await app.execute(wf.id, {})

        async def parked() -> bool:
            got = await app.store.get_run(run.execution_id, with_events=False)
            return got is not None and got.status is RunStatus.WAITING and bool(spy.released)

        await eventually(parked, what="the run parked and gave its lease back")
        stored = await app.store.get_run(run.execution_id, with_events=False)
        assert stored is not None and stored.lease_owner is None
        assert spy.released == [run.execution_id]


# Leasing a run this process created ---------------------------------------------------------


async def test_acquire_with_the_known_run_answers_as_a_full_read(store: Store) -> None:
    run = await store.create_run(new_run(trigger={"type": "manual"}))
    # Columns others may change without an event are read, never taken from `known`.
    await store.checkpoint(run.execution_id, Checkpoint(run_fields={"admitted": True}))
    expires = T0 + timedelta(seconds=10)
    with_known = await store.acquire_lease(run.execution_id, "a", expires, T0, known=run)
    await store.release_lease(run.execution_id, "a")
    full = await store.acquire_lease(run.execution_id, "a", expires, T0)
    assert with_known is not None and full is not None
    assert with_known.admitted is True
    assert with_known.model_dump() == full.model_dump()


async def test_acquire_reads_a_run_that_moved_on_since_it_was_created(store: Store) -> None:
    run = await store.create_run(new_run())
    eid = run.execution_id
    expires = T0 + timedelta(seconds=10)
    # Another worker drove it meanwhile (a redelivery), then let go.
    assert await store.acquire_lease(eid, "other", expires, T0) is not None
    done = NodeState(status=NodeStatus.COMPLETED, output={"v": 1})
    moved = Checkpoint(
        node_states={"start": done},
        events=[event(1, "start")],
        run_fields={"status": RunStatus.RUNNING},
    )
    await store.checkpoint(eid, moved, owner="other")
    await store.release_lease(eid, "other")
    leased = await store.acquire_lease(eid, "a", expires, T0, known=run)
    assert leased is not None
    assert leased.status is RunStatus.RUNNING and leased.last_seq == 1
    assert leased.node_states["start"].output == {"v": 1}
    stored = await store.get_run(eid, with_events=False)
    assert stored is not None and leased.model_dump() == stored.model_dump()


async def test_a_run_created_here_is_inserted_leased_and_driven_without_a_lease_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with embedded(tmp_path) as app:
        spy = _spy(app, monkeypatch)
        run = await _run_three(app)
        [inserted] = spy.created
        assert inserted.lease_owner == app.executor.owner
        assert inserted.lease_expires_at is not None
        assert spy.known == []  # no acquire_lease: the INSERT took the lease
        # Delivered again (at least once): read from the store, and finished already.
        assert await app.executor.advance(run.execution_id) is None
        assert spy.known == [None]


async def test_a_run_with_a_concurrency_limit_is_leased_after_it_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Admission decides after the lease is taken (engine/admission.py): such a run is
    # inserted free and leased by `advance`, with what was created.
    limited = THREE.model_copy(update={"settings": WorkflowSettings(max_concurrent_runs=1)})
    async with embedded(tmp_path) as app:
        spy = _spy(app, monkeypatch)
        workflow = await app.create_workflow(limited)
        run, _ = await app.execute(workflow.id, {"n": 1}, wait=True)
        assert run.status is RunStatus.SUCCESS, run.error
        [inserted] = spy.created
        assert (inserted.lease_owner, inserted.lease_expires_at) == (None, None)
        assert [k.execution_id if k else None for k in spy.known] == [run.execution_id]
        stored = await app.store.get_run(run.execution_id, with_events=False)
        assert stored is not None and stored.admitted


async def _created_not_delivered(app: Any, monkeypatch: pytest.MonkeyPatch) -> Run:
    """An async run of THREE that this process created leased and has not advanced yet."""
    held: list[str] = []

    async def hold(execution_id: str) -> None:
        held.append(execution_id)

    monkeypatch.setattr(app.queue, "enqueue", hold)
    workflow = await app.create_workflow(THREE)
    run, _ = await app.execute(workflow.id, {"n": 1})
    assert held == [run.execution_id]
    assert run.lease_owner == app.executor.owner
    return run


async def test_a_run_cancelled_before_its_advance_ends_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Waiting in this process's queue (behind busy runs, say), inserted leased to it: the
    # cancel gives the lease back and ends the run at once, as it did for a run nobody
    # held (it used to only set the flag, and the run stayed queued until a slot freed).
    async with embedded(tmp_path) as app:
        run = await _created_not_delivered(app, monkeypatch)
        cancelled = await app.cancel(run.execution_id)
        assert cancelled.status is RunStatus.CANCELLED
        assert (cancelled.lease_owner, cancelled.lease_expires_at) == (None, None)
        # Its message, delivered later, finds nothing to drive.
        assert await app.executor.advance(run.execution_id) is None
        final = await app.get_run(run.execution_id)
        assert final.status is RunStatus.CANCELLED and final.node_states == {}


async def test_a_run_waiting_in_the_queue_names_no_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Leased to its creator from the insert, but nobody works on it yet.
    async with embedded(tmp_path) as app:
        run = await _created_not_delivered(app, monkeypatch)
        assert "worker" not in run_view(run)
        running = run.model_copy(update={"status": RunStatus.RUNNING})
        assert run_view(running)["worker"] == app.executor.owner


async def test_a_clean_stop_after_such_a_cancel_leaves_no_lease(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with embedded(tmp_path) as app:
        cancelled = await _created_not_delivered(app, monkeypatch)
        kept = await _created_not_delivered(app, monkeypatch)
        await app.cancel(cancelled.execution_id)
    sql = SqlStore(f"sqlite:///{tmp_path / 'ductwork.db'}")
    await sql.start()
    try:
        for run in (cancelled, kept):
            stored = await sql.get_run(run.execution_id, with_events=False)
            assert stored is not None and stored.lease_owner is None, run.execution_id
    finally:
        await sql.close()


async def test_a_creation_lease_older_than_a_heartbeat_is_taken_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Advanced a heartbeat or more after it was created (a backed-up queue): the lease is
    # taken from the store (ours still, no re-drive) and renewed, not assumed.
    async with embedded(tmp_path) as app:
        spy = _spy(app, monkeypatch)
        run = await _created_not_delivered(app, monkeypatch)
        real = executor_module.utcnow
        later = timedelta(seconds=app.settings.heartbeat_seconds)
        monkeypatch.setattr(executor_module, "utcnow", lambda: real() + later)
        assert await app.executor.advance(run.execution_id) is RunStatus.SUCCESS
        assert [k.execution_id if k else None for k in spy.known] == [run.execution_id]
        final = await app.get_run(run.execution_id)
        assert final.status is RunStatus.SUCCESS and final.redrives == 0


async def test_a_run_created_leased_renews_its_lease_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The heartbeat of a run leased by its INSERT renews that lease like any other.
    node = ProbeNode()
    slow = definition(
        [{"id": "start", "type": "start"}, {"id": "p", "type": "probe", "config": {"hold": True}}],
        [("start", "p")],
    )
    async with embedded(
        tmp_path, extra_nodes=[node], lease_seconds=2.0, heartbeat_seconds=0.2
    ) as app:
        spy = _spy(app, monkeypatch)
        renewals: list[str] = []
        renew = app.store.renew_lease

        async def counting(execution_id: str, owner: str, expires: Any) -> bool:
            kept = await renew(execution_id, owner, expires)
            renewals.append(execution_id)
            return kept

        monkeypatch.setattr(app.store, "renew_lease", counting)
        workflow = await app.create_workflow(slow)
        run, _ = await app.execute(workflow.id, {})
        [inserted] = spy.created
        assert inserted.lease_owner == app.executor.owner and inserted.lease_expires_at
        await eventually(lambda: len(renewals) >= 2, what="two renewals of the lease")
        held = await app.store.get_run(run.execution_id, with_events=False)
        assert held is not None and held.lease_owner == app.executor.owner
        assert held.lease_expires_at is not None
        assert held.lease_expires_at > inserted.lease_expires_at
        node.release()

        async def finished() -> bool:
            got = await app.store.get_run(run.execution_id, with_events=False)
            return got is not None and got.status.finished

        await eventually(finished, what="the run finished")
        final = await app.get_run(run.execution_id)
    assert final.status is RunStatus.SUCCESS, final.error
    assert final.redrives == 0 and spy.known == []


async def test_a_process_that_stops_gives_back_the_leases_of_runs_it_did_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stopped with runs still in its queue: the next process takes them at once (as
    # runs nobody held, no re-drive), not a lease later.
    async with embedded(tmp_path) as app:
        run = await _created_not_delivered(app, monkeypatch)
        url = app.settings.resolved_store_url
    reader = SqlStore(url)  # the store as the next process finds it (no sweep of its own)
    await reader.start()
    try:
        stored = await reader.get_run(run.execution_id, with_events=False)
        assert stored is not None and stored.status is RunStatus.QUEUED
        assert (stored.lease_owner, stored.lease_expires_at) == (None, None)
        now = utcnow()
        leased = await reader.acquire_lease(run.execution_id, "next", now, now)
        assert leased is not None and leased.redrives == 0
    finally:
        await reader.close()
