"""Store contract of the concurrency limits (issue 11): `admit_run`, `find_waiting_runs`,
`find_waiting_heads`, and `find_runs_to_resume` leaving refused runs to the latter.

Run against every store through the `store` fixture of tests/test_store_contract.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ductwork.models import Checkpoint, Run, RunStatus
from ductwork.store.base import Admission, Store
from ductwork.store.factory import create_store
from ductwork.store.mongo import MongoStore
from tests.test_store_contract import T0, new_run, stored_run


def runs_of(workflow_id: str, count: int, *, start: int = 0) -> list[Run]:
    """`count` runs of a workflow, one second apart (oldest first)."""
    return [
        new_run(
            workflow_id, created_at=T0 + timedelta(seconds=start + i), label=f"{workflow_id}-{i}"
        )
        for i in range(count)
    ]


async def create(store: Store, runs: list[Run]) -> list[str]:
    for run in runs:
        await store.create_run(run)
    return [run.execution_id for run in runs]


async def test_workflow_limit_counts_admitted_unfinished_runs(store: Store) -> None:
    a, b, c = await create(store, runs_of("wf", 3))
    assert await store.admit_run(a, 2, None) == Admission(admitted=True, workflow_active=1)
    assert await store.admit_run(b, 2, None) == Admission(admitted=True, workflow_active=2)
    refused = await store.admit_run(c, 2, None)
    assert refused == Admission(admitted=False, blocked_by="workflow", workflow_active=2)
    got = await store.get_run(a)
    assert got is not None and got.admitted and got.queued_reason is None
    # An admitted run keeps its slot while it runs and parks; finishing frees it.
    await store.checkpoint(a, Checkpoint(run_fields={"status": RunStatus.WAITING}))
    assert (await store.admit_run(c, 2, None)).blocked_by == "workflow"
    await store.checkpoint(a, Checkpoint(run_fields={"status": RunStatus.SUCCESS}))
    assert await store.admit_run(c, 2, None) == Admission(admitted=True, workflow_active=2)
    # Other workflows' runs do not count against it.
    (other,) = await create(store, runs_of("wf-other", 1))
    assert (await store.admit_run(other, 1, None)).admitted


async def test_admitted_runs_pass_and_runs_not_queued_are_left_alone(store: Store) -> None:
    a, b = await create(store, runs_of("wf", 2))
    assert (await store.admit_run(a, 1, None)).admitted
    # Asked again (a resumed run, a second delivery): admitted, nothing counted.
    assert await store.admit_run(a, 1, None) == Admission(admitted=True)
    await store.checkpoint(b, Checkpoint(run_fields={"status": RunStatus.RUNNING}))
    assert await store.admit_run(b, 1, None) == Admission(admitted=False)
    assert await store.admit_run("no-such-run", 1, None) == Admission(admitted=False)
    got = await store.get_run(b)
    assert got is not None and not got.admitted


async def test_fifo_older_waiting_runs_go_first(store: Store) -> None:
    old, cancelled, young = await create(store, runs_of("wf", 3))
    # `cancelled` waits no more: it does not hold anyone back.
    await store.checkpoint(cancelled, Checkpoint(run_fields={"cancel_requested": True}))
    refused = await store.admit_run(young, 5, None)
    assert refused.blocked_by == "order" and not refused.admitted
    assert (await store.admit_run(old, 5, None)).admitted
    assert await store.admit_run(young, 5, None) == Admission(admitted=True, workflow_active=2)
    # Same creation time: the execution id decides.
    first, second = sorted(
        await create(
            store,
            [new_run("wf-tie", created_at=T0, label=label) for label in ("tie-a", "tie-b")],
        )
    )
    assert (await store.admit_run(second, None, 10)).blocked_by == "order"
    assert (await store.admit_run(first, None, 10)).admitted


async def test_global_limit_counts_every_workflow(store: Store) -> None:
    (a,) = await create(store, runs_of("wf-a", 1))
    (b,) = await create(store, runs_of("wf-b", 1, start=1))
    assert await store.admit_run(a, None, 1) == Admission(admitted=True, global_active=1)
    refused = await store.admit_run(b, 5, 1)
    assert refused == Admission(
        admitted=False, blocked_by="global", workflow_active=0, global_active=1
    )
    await store.checkpoint(a, Checkpoint(run_fields={"status": RunStatus.ERROR}))
    assert await store.admit_run(b, 5, 1) == Admission(
        admitted=True, workflow_active=1, global_active=1
    )


async def test_waiting_runs_and_heads(store: Store) -> None:
    a0, a1, a2 = await create(store, runs_of("wf-a", 3))
    b0, b1 = await create(store, runs_of("wf-b", 2, start=10))
    (c0,) = await create(store, runs_of("wf-c", 1, start=20))
    assert await store.find_waiting_runs("wf-a", 10) == [a0, a1, a2]
    assert await store.find_waiting_runs(None, 4) == [a0, a1, a2, b0]
    assert (await store.admit_run(a0, 1, None)).admitted
    assert await store.find_waiting_runs("wf-a", 10) == [a1, a2]
    # Heads: only runs refused before (a reason) and not held; one per workflow.
    now = T0 + timedelta(minutes=5)
    assert await store.find_waiting_heads(now, 10) == []
    for eid in (a1, a2, b1, c0):
        await store.checkpoint(eid, Checkpoint(run_fields={"queued_reason": "full"}))
    # b0 has no reason (never offered yet): the sweep's usual clause offers it, and
    # b1 waits behind it.
    assert await store.find_waiting_heads(now, 10) == [a1, c0]
    assert await store.find_waiting_heads(now, 1) == [a1]
    await store.acquire_lease(c0, "worker-1", now + timedelta(seconds=30), now)
    assert await store.find_waiting_heads(now, 10) == [a1]
    await store.checkpoint(a1, Checkpoint(run_fields={"cancel_requested": True}))
    assert await store.find_waiting_heads(now, 10) == [a2]
    assert a1 not in await store.find_waiting_runs(None, 10)


async def test_refused_runs_leave_the_resume_sweep_to_the_heads(store: Store) -> None:
    waiting = await stored_run(store, new_run("wf", label="waiting"), queued_reason="full")
    lost = await stored_run(store, new_run("wf", label="lost"))
    cancelled = await stored_run(
        store, new_run("wf", label="cancelled"), queued_reason="full", cancel_requested=True
    )
    due = await store.find_runs_to_resume(T0 + timedelta(minutes=1))
    assert lost.execution_id in due and cancelled.execution_id in due
    assert waiting.execution_id not in due


async def test_concurrent_admissions_never_exceed_the_limits(
    store_kind: str, store_url_factory: Callable[[str], str]
) -> None:
    """Three store instances (three processes' connections) admit 24 runs at once,
    round after round: never more than the limit hold a slot."""
    url = store_url_factory(store_kind)
    stores = [create_store(url) for _ in range(3)]
    for instance in stores:
        await instance.start()
    try:
        first = stores[0]
        ids = await create(first, runs_of("wf", 24))
        others = await create(first, runs_of("wf-other", 6, start=100))
        limit, global_limit = 3, 5
        finished: set[str] = set()
        for _ in range(4):
            pending = [eid for eid in ids + others if eid not in finished]
            results = await asyncio.gather(
                *(
                    stores[i % len(stores)].admit_run(
                        eid, limit if eid in ids else None, global_limit
                    )
                    for i, eid in enumerate(reversed(pending))
                )
            )
            holding = [
                run
                for run in [await first.get_run(eid, with_events=False) for eid in pending]
                if run is not None and run.admitted
            ]
            assert sum(1 for run in holding if run.workflow_id == "wf") <= limit
            assert len(holding) <= global_limit
            assert sum(result.admitted for result in results) == len(holding)
            assert holding, "a free slot must go to someone"
            for run in holding:
                await first.checkpoint(
                    run.execution_id, Checkpoint(run_fields={"status": RunStatus.SUCCESS})
                )
                finished.add(run.execution_id)
    finally:
        for instance in stores:
            await instance.close()


async def test_mongo_admission_by_a_holder_whose_lock_was_taken_over_is_undone(
    store: Store,
) -> None:
    """A holder stalled past the lock's TTL, then writing, must not over-admit.

    Run A (global limit 1) stalls between its counts and its write; meanwhile the
    global lock, expired, is taken over and run B admitted. A's late write must
    not leave both admitted.
    """
    if not isinstance(store, MongoStore):
        return  # SQL: advisory locks / one write transaction, nothing expires
    (a,) = await create(store, runs_of("wf-a", 1))
    (b,) = await create(store, runs_of("wf-b", 1))
    store._ADMISSION_LOCK_TTL = timedelta(seconds=-1)  # expired at once: taken over
    real = store._collection
    taken_over: list[Admission] = []

    class Stall:
        """workflow_runs, where A's admitting write first lets B be admitted."""

        def __init__(self, collection: Any) -> None:
            self._collection = collection

        def __getattr__(self, name: str) -> Any:
            return getattr(self._collection, name)

        async def update_one(self, filter_: Any, update: Any, **kwargs: Any) -> Any:
            if filter_.get("execution_id") == a and not taken_over:
                taken_over.append(await store.admit_run(b, None, 1))
            return await self._collection.update_one(filter_, update, **kwargs)

    def collection(name: str) -> Any:
        found = real(name)
        return Stall(found) if name == "workflow_runs" else found

    store._collection = collection  # type: ignore[method-assign]
    try:
        late = await store.admit_run(a, None, 1)
    finally:
        del store._collection
        del store._ADMISSION_LOCK_TTL
    assert taken_over == [Admission(admitted=True, global_active=1)]
    assert late.admitted is False and late.blocked_by == "global"
    admitted = [eid for eid in (a, b) if (await store.get_run(eid, with_events=False)).admitted]
    assert admitted == [b]
