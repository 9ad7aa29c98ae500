"""Retention and versions in every store: pruning keeps exactly what the plan says.

Runs get controlled `created_at` / `end_time`, so each test states which runs a
plan deletes and asserts that exactly those are gone (with their node states and
events) and every other run is left as it was.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from ductwork.models import Checkpoint, Event, NodeState, NodeStatus, RunStatus, Workflow
from ductwork.retention import PrunePlan, RetentionRule
from ductwork.store.base import Store
from ductwork.store.mongo import MongoStore
from ductwork.store.sql import SqlStore, node_states, run_events
from tests.test_store_contract import T0, definition, new_run, stored

NOW = T0 + timedelta(days=100)
FINISHED = (RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.CANCELLED)


async def add_run(
    store: Store,
    workflow_id: str,
    *,
    age_days: float,
    status: RunStatus = RunStatus.SUCCESS,
    ended_days_ago: float | None = None,
    label: str = "run",
    parent: str | None = None,
    error_workflow_pending: bool = False,
) -> str:
    """A run created `age_days` before NOW, with a node state and two events.

    A finished run ends when it was created unless `ended_days_ago` says otherwise.
    """
    created = NOW - timedelta(days=age_days)
    run = new_run(workflow_id, created_at=created, label=f"{label}-{uuid.uuid4().hex[:6]}")
    if parent is not None:
        run = run.model_copy(update={"parent_execution_id": parent, "depth": 1})
    await store.create_run(run)
    fields: dict[str, Any] = {"status": status}
    if error_workflow_pending:
        fields["error_workflow_pending"] = True
    if status.finished:
        ended = created if ended_days_ago is None else NOW - timedelta(days=ended_days_ago)
        fields["end_time"] = ended
    events = [
        Event(seq=seq, type="log", node_id="start", timestamp=created, data={"n": seq})
        for seq in (1, 2)
    ]
    state = NodeState(status=NodeStatus.COMPLETED, output={"ok": True})
    await store.checkpoint(
        run.execution_id,
        Checkpoint(node_states={"start": state}, events=events, run_fields=fields),
    )
    return run.execution_id


async def leftovers(store: Store, execution_id: str) -> tuple[int, int]:
    """Node state and event rows (documents) still stored for a run: (states, events)."""
    if isinstance(store, SqlStore):
        async with store._backend.transaction(write=False) as session:
            states = await session.execute(
                select(func.count())
                .select_from(node_states)
                .where(node_states.c.execution_id == execution_id),
                {},
            )
            events = await session.execute(
                select(func.count())
                .select_from(run_events)
                .where(run_events.c.execution_id == execution_id),
                {},
            )
            return int(states.scalar_one()), int(events.scalar_one())
    assert isinstance(store, MongoStore)
    found = await store._events.count_documents({"execution_id": execution_id})
    return 0, found  # node states live inside the run document


async def remaining(store: Store, ids: list[str]) -> set[str]:
    return {eid for eid in ids if await store.get_run(eid, with_events=False) is not None}


async def prune_all(store: Store, plan: PrunePlan, limit: int = 100) -> int:
    total = 0
    while True:
        deleted = await store.prune_runs(plan, limit)
        total += deleted
        if deleted < limit:
            return total


def older_than(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def test_days_delete_runs_that_finished_before_the_cutoff(store: Store) -> None:
    old = [await add_run(store, "wf-a", age_days=40, status=s) for s in FINISHED]
    young = await add_run(store, "wf-a", age_days=10)
    # Created long ago but finished recently: it counts from its end.
    long_running = await add_run(store, "wf-a", age_days=60, ended_days_ago=5)
    # Unfinished runs are never touched, however old.
    unfinished = [
        await add_run(store, "wf-a", age_days=90, status=s)
        for s in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING)
    ]
    other = await add_run(store, "wf-b", age_days=45)
    everything = [*old, young, long_running, *unfinished, other]
    plan = PrunePlan(default=RetentionRule(finished_before=older_than(30)))

    assert await store.count_prunable_runs(plan) == 4
    assert await prune_all(store, plan) == 4

    assert await remaining(store, everything) == {young, long_running, *unfinished}
    for eid in [*old, other]:
        assert await leftovers(store, eid) == (0, 0)
        assert await store.list_events(eid) == []
    assert (await leftovers(store, young))[1] == 2  # its events are still there
    assert await store.count_prunable_runs(plan) == 0


async def test_keep_last_keeps_the_newest_finished_runs_of_each_workflow(store: Store) -> None:
    a = [await add_run(store, "wf-a", age_days=age) for age in (5, 4, 3, 2, 1)]  # oldest first
    running = await add_run(store, "wf-a", age_days=0.5, status=RunStatus.RUNNING)
    waiting_old = await add_run(store, "wf-a", age_days=9, status=RunStatus.WAITING)
    b = [await add_run(store, "wf-b", age_days=age) for age in (3, 2)]
    plan = PrunePlan(default=RetentionRule(keep_last=2))

    assert await store.count_prunable_runs(plan) == 3
    assert await prune_all(store, plan) == 3

    # The two newest FINISHED runs of each workflow: unfinished ones do not count.
    assert await remaining(store, [*a, running, waiting_old, *b]) == {
        a[3],
        a[4],
        running,
        waiting_old,
        *b,
    }


async def test_either_rule_deletes_and_overrides_apply_per_workflow(store: Store) -> None:
    # Default: 30 days or the 3 newest; wf-long: 365 days, 10 runs; wf-short: 1 run.
    default = RetentionRule(finished_before=older_than(30), keep_last=3)
    plan = PrunePlan(
        default=default,
        overrides={
            "wf-long": RetentionRule(finished_before=older_than(365), keep_last=10),
            "wf-short": RetentionRule(finished_before=older_than(30), keep_last=1),
        },
    )
    plain = [await add_run(store, "wf-plain", age_days=age) for age in (50, 20, 15, 10, 5)]
    long = [await add_run(store, "wf-long", age_days=age) for age in (50, 20, 15, 10, 5)]
    short = [await add_run(store, "wf-short", age_days=age) for age in (50, 20, 5)]
    # A deleted workflow's runs and an unsaved file: run follow the default.
    unsaved = [await add_run(store, "file:flow.json", age_days=age) for age in (40, 3)]

    assert await prune_all(store, plan) == 2 + 0 + 2 + 1

    kept = await remaining(store, [*plain, *long, *short, *unsaved])
    # wf-plain: 50 days is too old; of the rest the newest 3 stay.
    assert kept == {plain[2], plain[3], plain[4], *long, short[2], unsaved[1]}


async def test_prune_goes_in_batches_of_the_limit(store: Store) -> None:
    ids = [await add_run(store, "wf-a", age_days=40 + n) for n in range(7)]
    kept = await add_run(store, "wf-a", age_days=1)
    plan = PrunePlan(default=RetentionRule(finished_before=older_than(30)))

    batches = [await store.prune_runs(plan, 2) for _ in range(5)]

    assert batches == [2, 2, 2, 1, 0]
    assert await remaining(store, [*ids, kept]) == {kept}
    for eid in ids:
        assert await leftovers(store, eid) == (0, 0)


async def test_a_plan_that_keeps_everything_deletes_nothing(store: Store) -> None:
    ids = [await add_run(store, "wf-a", age_days=age) for age in (400, 1)]
    keep_all = PrunePlan(overrides={"wf-a": RetentionRule()})

    assert await store.prune_runs(keep_all, 10) == 0
    assert await store.count_prunable_runs(keep_all) == 0
    # An override keeps its workflow's runs even when the default would delete them.
    plan = PrunePlan(
        default=RetentionRule(keep_last=1), overrides={"wf-a": RetentionRule(keep_last=5)}
    )
    assert await store.prune_runs(plan, 10) == 0
    assert await remaining(store, ids) == set(ids)


async def test_prune_keeps_runs_other_state_still_depends_on(store: Store) -> None:
    # Oldest first, so a batch of one meets the kept runs before the others: they
    # must not be candidates at all (a batch that deletes fewer than its limit ends
    # a prune, and would end every later one too).
    pending = await add_run(
        store, "wf-a", age_days=90, status=RunStatus.ERROR, error_workflow_pending=True
    )
    live_parent = await add_run(store, "wf-a", age_days=80, status=RunStatus.RUNNING)
    child_of_live = await add_run(store, "wf-c", age_days=79, parent=live_parent)
    done_parent = await add_run(store, "wf-a", age_days=70)
    child_of_done = await add_run(store, "wf-c", age_days=69, parent=done_parent)
    orphan = await add_run(store, "wf-c", age_days=68, parent="deleted-parent")
    plain = await add_run(store, "wf-a", age_days=60, status=RunStatus.ERROR)
    everything = [pending, live_parent, child_of_live, done_parent, child_of_done, orphan, plain]

    for plan in (
        PrunePlan(default=RetentionRule(finished_before=older_than(30))),
        PrunePlan(default=RetentionRule(keep_last=0)),
    ):
        assert await store.count_prunable_runs(plan) == 4
    assert await prune_all(store, PrunePlan(default=RetentionRule(keep_last=0)), limit=1) == 4

    assert await remaining(store, everything) == {pending, live_parent, child_of_live}
    assert (await leftovers(store, child_of_live))[1] == 2


async def test_delete_run_deletes_only_finished_runs(store: Store) -> None:
    done = await add_run(store, "wf-a", age_days=1)
    running = await add_run(store, "wf-a", age_days=1, status=RunStatus.RUNNING)

    assert await store.delete_run(done) is True
    assert await store.get_run(done) is None
    assert await leftovers(store, done) == (0, 0)
    assert await store.delete_run(done) is False  # gone already
    assert await store.delete_run("no-such-run") is False
    assert await store.delete_run(running) is False
    still = await store.get_run(running)
    assert still is not None and len(still.events) == 2


async def test_list_workflow_versions_newest_first_with_paging(
    store: Store, store_kind: str
) -> None:
    await store.create_workflow(
        Workflow(id="wf-v", definition=definition("first"), created_at=T0, updated_at=T0)
    )
    await store.update_workflow("wf-v", definition("second", "a", "b", "c"), T0 + timedelta(1))
    await store.update_workflow("wf-v", definition("third", "a"), T0 + timedelta(2))
    await store.create_workflow(
        Workflow(id="wf-other", definition=definition("x"), created_at=T0, updated_at=T0)
    )

    versions = await store.list_workflow_versions("wf-v")

    assert [(v.version, v.name, v.node_count, v.edge_count) for v in versions] == [
        (3, "third", 1, 0),
        (2, "second", 3, 2),
        (1, "first", 2, 1),
    ]
    assert versions[0].created_at == stored(store_kind, T0 + timedelta(2))
    page = await store.list_workflow_versions("wf-v", limit=1, offset=1)
    assert [v.version for v in page] == [2]
    assert await store.list_workflow_versions("no-such-workflow") == []


class _RetryOnFirstDelete:
    """A collection that lets `retry` run just before the first delete of a prune.

    That is the race: a run read as finished is retried before the prune writes.
    """

    def __init__(self, collection: Any, retry: Any, fired: list[bool]) -> None:
        self._collection = collection
        self._retry = retry
        self._fired = fired

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)

    async def delete_many(self, *args: Any, **kwargs: Any) -> Any:
        if not self._fired:
            self._fired.append(True)
            await self._retry()
        return await self._collection.delete_many(*args, **kwargs)


async def test_mongo_delete_racing_a_retry_keeps_the_runs_history(store: Store) -> None:
    if not isinstance(store, MongoStore):
        return  # SQL locks the runs in its one transaction (see the tests above)
    from ductwork.store import mongo_retention

    retried = await add_run(store, "wf-a", age_days=40)
    other = await add_run(store, "wf-a", age_days=41)

    async def retry() -> None:
        await store.checkpoint(retried, Checkpoint(run_fields={"status": RunStatus.QUEUED}))

    fired: list[bool] = []
    runs = _RetryOnFirstDelete(store._runs, retry, fired)
    events = _RetryOnFirstDelete(store._events, retry, fired)
    assert await mongo_retention.delete_runs(runs, events, [retried, other]) == 1

    assert await remaining(store, [retried, other]) == {retried}
    assert (await leftovers(store, retried))[1] == 2  # the live run keeps its events
    assert await leftovers(store, other) == (0, 0)


async def test_runs_created_since_kept_since_stay_and_still_rank(store: Store) -> None:
    # A workflow with a daily budget: its runs of "today" (the last half day) stay.
    today = [await add_run(store, "wf-budget", age_days=d) for d in (0.1, 0.2, 0.3)]
    before = {d: await add_run(store, "wf-budget", age_days=d) for d in (1, 2, 3)}
    other = await add_run(store, "wf-other", age_days=0.1)
    since = older_than(0.5)

    # The newest 4 stay: today's 3 rank first, then the one of a day ago.
    ranked = PrunePlan(
        default=RetentionRule(keep_last=1),
        overrides={"wf-budget": RetentionRule(keep_last=4, kept_since=since)},
    )
    assert await store.count_prunable_runs(ranked) == 2
    assert await prune_all(store, ranked) == 2
    assert await remaining(store, [*today, *before.values(), other]) == {*today, before[1], other}

    # Everything finished before now goes, except what was created since `kept_since`.
    dated = PrunePlan(
        overrides={"wf-budget": RetentionRule(finished_before=NOW, keep_last=1, kept_since=since)}
    )
    assert await store.count_prunable_runs(dated) == 1
    assert await prune_all(store, dated) == 1
    assert await remaining(store, [*today, before[1], other]) == {*today, other}
